"""Sizing a Pi: gatewayd's RSS idle and with 1,000 connected devices, and journal bytes per message.

    .venv/bin/python bench/footprint.py [--devices 1000] [--seconds 10] [--interval 1]

gatewayd runs as a subprocess on 127.0.0.1 with `--devices` registered WebSocket devices; every
device sends one telemetry message (with an id, so it waits for the durable ack) every `--interval`
seconds for `--seconds`. Reported: RSS of an empty daemon, of the daemon with the devices created,
with all of them connected, and after the traffic; journal bytes and fsyncs per message (from
/metrics) and the bytes the process made the kernel write to storage per message (/proc/PID/io:
what wears an SD card; the history store's commits of the traffic included). The raw stack
(bench/raw_server.py: hypercorn + quart-trio, nothing parsed or stored) carries the same
connections and traffic in the same run, for the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wsload import LOOPBACK_FLEET, ROOT, Server, create_devices, raise_nofile, rss_kib, temp_dir, write_config  # noqa: E402

TELEMETRY = {"temperature": 22.5, "humidity": 48, "battery": 3.61}
# Long enough for the history store's periodic work (telemetry regrouped by device every 20,000
# messages: every 20 s at 1,000 messages/s) to show in the storage bytes per message. Its
# checkpoints (every 4,000 WAL pages: minutes apart) are counted as they come, and bounded in the
# "steady state" line (a checkpoint copies a WAL page once at most).
STEADY_SECONDS = 60


def settle_rss(pid: int, seconds: float = 1.0) -> int:
    """RSS after a short quiet moment (allocator and GC settle after startup or a burst)."""
    time.sleep(seconds)
    return rss_kib(pid)


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def metric(port: int, name: str) -> float:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


class Fleet:
    """`devices` WebSocket clients in this process: connect and register, send telemetry, disconnect."""

    def __init__(self, url: str, devices: list[dict]):
        self.url = url
        self.devices = devices
        self.connected = 0
        self.sent = 0
        self.acked = 0
        self.wire_bytes = 0
        self.failures = 0
        self.ack_seconds: list[float] = []

    async def run(self, on_connected, traffic_seconds: float, interval: float, on_done) -> None:
        from trio_websocket import open_websocket_url

        all_up = trio.Event()
        traffic = trio.Event()
        finished = trio.Event()
        ramp = trio.Semaphore(100)

        async def device(index: int, creds: dict) -> None:
            await ramp.acquire()  # connections open 100 at a time, then stay open
            ramping = True
            try:
                async with open_websocket_url(self.url, connect_timeout=30, disconnect_timeout=5) as ws:
                    await ws.send_message(json.dumps({"type": "register", "device_id": creds["id"],
                                                      "token": creds["token"]}))
                    with trio.fail_after(30):
                        await ws.get_message()
                    ramp.release()
                    ramping = False
                    self.connected += 1
                    if self.connected == len(self.devices):
                        all_up.set()
                    await traffic.wait()
                    deadline = trio.current_time() + traffic_seconds
                    next_at = trio.current_time() + (index % 100) / 100 * interval
                    n = 0
                    while next_at < deadline:
                        await trio.sleep_until(next_at)
                        frame = json.dumps({"type": "telemetry", "id": str(n), "payload": TELEMETRY})
                        sent_at = trio.current_time()
                        await ws.send_message(frame)
                        self.sent += 1
                        self.wire_bytes += len(frame)
                        with trio.fail_after(30):
                            await ws.get_message()
                        self.ack_seconds.append(trio.current_time() - sent_at)
                        self.acked += 1
                        n += 1
                        next_at += interval
                    await finished.wait()
            finally:
                if ramping:
                    ramp.release()

        async with trio.open_nursery() as nursery:
            for index, creds in enumerate(self.devices):
                nursery.start_soon(device, index, creds)
            with trio.fail_after(120):
                await all_up.wait()
            await trio.to_thread.run_sync(on_connected)
            traffic.set()
            await trio.sleep(traffic_seconds)
            with trio.fail_after(60):
                while self.acked < self.sent or self.sent == 0:
                    await trio.sleep(0.05)
            await trio.to_thread.run_sync(on_done)
            finished.set()


def percentiles(seconds: list[float]) -> dict:
    ordered = sorted(seconds) or [float("nan")]
    return {name: ordered[min(int(len(ordered) * q), len(ordered) - 1)] * 1000
            for name, q in (("p50", 0.50), ("p99", 0.99))}


def journal_counters(port: int | None) -> dict:
    if port is None:
        return {}
    counters = {name: metric(port, f"gatewayd_journal_{name}_total") for name in ("bytes", "fsyncs", "appends")}
    for name in ("wal_bytes", "checkpoint_bytes", "commits"):
        counters[f"history_{name}"] = metric(port, f"gatewayd_history_{name}_total")
    return counters


def snapshot_bytes(state: Path, since: float) -> int:
    """Bytes of the snapshot files written after `since` (time.time())."""
    return sum(path.stat().st_size for path in state.rglob("*snapshot*")
               if path.is_file() and path.stat().st_mtime >= since)


def measure(url: str, devices: list[dict], pid: int, seconds: float, interval: float,
            metrics_port: int | None = None) -> dict:
    figures: dict = {"registered": journal_counters(metrics_port)}

    def connected() -> None:
        figures["connected_kib"] = settle_rss(pid)
        figures["write_before"] = write_bytes(pid)
        figures["connected"] = journal_counters(metrics_port)

    def done() -> None:
        if metrics_port is not None:  # the history store's writes of this traffic count too
            deadline = time.monotonic() + 30
            while (metric(metrics_port, "gatewayd_history_seq") < metric(metrics_port, "gatewayd_journal_seq")
                   and time.monotonic() < deadline):
                time.sleep(0.1)
        figures["write_after"] = write_bytes(pid)
        figures["done"] = journal_counters(metrics_port)
        figures["after_kib"] = settle_rss(pid)

    fleet = Fleet(url, devices)
    trio.run(fleet.run, connected, seconds, interval, done)
    figures.update(messages=fleet.acked, wire_bytes=fleet.wire_bytes, ack_ms=percentiles(fleet.ack_seconds))
    return figures


def raw_stack(devices: list[dict], seconds: float, interval: float, tmp: Path) -> dict:
    portfile = tmp / "raw.json"
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "raw_server.py"), str(portfile)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not portfile.exists() or not portfile.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the raw server did not start")
            time.sleep(0.05)
        time.sleep(0.1)
        port = json.loads(portfile.read_text())["port"]
        figures = {"idle_kib": settle_rss(proc.pid)}
        figures.update(measure(f"ws://127.0.0.1:{port}/ws", devices, proc.pid, seconds, interval))
        return figures
    finally:
        proc.terminate()
        proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of telemetry traffic")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between one device's messages")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a gatewayd setting for the run, e.g. journal.commit_interval_ms=50 (repeatable)")
    parser.add_argument("--telemetry-history", type=int, default=None,
                        help="devices.telemetry_history for the run (default: gatewayd's default)")
    args = parser.parse_args()
    raise_nofile(args.devices * 2 + 1000)
    with temp_dir("gatewayd-bench-footprint-") as tmp:
        tmp = Path(tmp)
        sections = {"log": {"level": "warning"}, "devices": dict(LOOPBACK_FLEET)}
        if args.telemetry_history is not None:
            sections["devices"]["telemetry_history"] = args.telemetry_history
        for setting in args.set:
            dotted, value = setting.split("=", 1)
            section, key = dotted.split(".", 1)
            sections.setdefault(section, {})[key] = json.loads(value)
        config = write_config(tmp, sections)

        empty_state = tmp / "empty"
        empty_state.mkdir()
        empty = Server(empty_state, config).start()
        try:
            empty_kib = settle_rss(empty.pid)
        finally:
            empty.stop()

        state = tmp / "state"
        devices = trio.run(create_devices, state, args.devices)
        server = Server(state, config).start()
        try:
            idle_kib = settle_rss(server.pid)
            started = time.time()
            gw = measure(f"ws://127.0.0.1:{server.port}/ws", devices, server.pid, args.seconds, args.interval,
                         metrics_port=server.port)
            gw["snapshot_bytes"] = snapshot_bytes(state, started)
        finally:
            server.stop()
        raw = raw_stack(devices, args.seconds, args.interval, tmp)

    n = args.devices
    mib = 1024.0
    messages = gw["messages"]
    # Registrations and presence changes are journaled too; per message counts them in.
    print(f"{n} WebSocket devices, each sending one telemetry message every {args.interval:g} s for "
          f"{args.seconds:g} s ({messages} messages acknowledged)")
    print(f"{'':34} {'gatewayd':>10} {'raw stack':>10} {'ratio':>6}")
    print(f"{'RSS, empty state, idle (MiB)':34} {empty_kib / mib:10.1f}")
    print(f"{'RSS, devices created, idle (MiB)':34} {idle_kib / mib:10.1f} {raw['idle_kib'] / mib:10.1f} "
          f"{idle_kib / raw['idle_kib']:6.2f}")
    print(f"{'RSS, all connected (MiB)':34} {gw['connected_kib'] / mib:10.1f} {raw['connected_kib'] / mib:10.1f} "
          f"{gw['connected_kib'] / raw['connected_kib']:6.2f}")
    print(f"{'RSS, after the traffic (MiB)':34} {gw['after_kib'] / mib:10.1f} {raw['after_kib'] / mib:10.1f} "
          f"{gw['after_kib'] / raw['after_kib']:6.2f}")
    per_conn = (gw["connected_kib"] - idle_kib) / n
    raw_per_conn = (raw["connected_kib"] - raw["idle_kib"]) / n
    print(f"{'KiB per connection above idle':34} {per_conn:10.1f} {raw_per_conn:10.1f} "
          f"{per_conn / raw_per_conn if raw_per_conn > 0 else float('nan'):6.2f}")
    print(f"{'KiB of RSS per message kept':34} {(gw['after_kib'] - gw['connected_kib']) / messages:10.2f}  "
          "(no history in memory: the history store holds it; this is buffers and the allocator)")
    wire = gw["wire_bytes"] / messages
    joining = {k: gw["connected"][k] - gw["registered"][k] for k in gw["registered"]}
    traffic = {k: gw["done"][k] - gw["connected"][k] for k in gw["connected"]}
    journal_bytes = traffic["bytes"]
    print(f"{'journal bytes per connect+register':34} {joining['bytes'] / n:10.0f}  "
          f"({joining['appends'] / n:.1f} records per device)")
    print(f"{'wire bytes per message':34} {wire:10.0f}")
    print(f"{'journal bytes per message':34} {journal_bytes / messages:10.0f} {'':>10} {journal_bytes / messages / wire:6.2f}"
          "  (ratio: to the wire size)")
    print(f"{'journal records per message':34} {traffic['appends'] / messages:10.2f}")
    print(f"{'fsyncs per message':34} {traffic['fsyncs'] / messages:10.3f}")
    storage = gw["write_after"] - gw["write_before"]
    raw_storage = raw["write_after"] - raw["write_before"]
    print(f"{'storage write bytes per message':34} {storage / messages:10.0f} {raw_storage / max(raw['messages'], 1):10.0f}"
          "  (/proc/PID/io write_bytes: pages written, what the SD card sees)")
    # Where the bytes go: the journal and the history store count what they write; storage write
    # bytes count pages (a page rewritten after it reached storage counts again).
    store_wal, store_checkpoint = traffic["history_wal_bytes"], traffic["history_checkpoint_bytes"]
    rest = storage - journal_bytes - store_wal - store_checkpoint - gw["snapshot_bytes"]
    print(f"{'  of which journal':34} {journal_bytes / messages:10.0f}")
    print(f"{'  of which history store WAL':34} {store_wal / messages:10.0f}"
          f"  ({traffic['history_commits']:.0f} commits)")
    print(f"{'  of which store checkpoints':34} {store_checkpoint / messages:10.0f}  (pages copied into history.db)")
    print(f"{'  of which snapshots':34} {gw['snapshot_bytes'] / messages:10.0f}")
    print(f"{'  of which the rest':34} {rest / messages:10.0f}  (mostly the journal's last page written again "
          f"after each fsync: up to {traffic['fsyncs'] * 4096 / messages:.0f}; cursors, metadata)")
    uncopied = max(store_wal - store_checkpoint, 0)
    print(f"{'storage bytes per message, steady':34} {(storage + uncopied) / messages:10.0f}  (at most: the above "
          "with every WAL page not checkpointed yet copied once, as checkpoints do in the long run)")
    print(f"{'ack latency p50 / p99 (ms)':34} {gw['ack_ms']['p50']:10.1f} {raw['ack_ms']['p50']:10.1f}"
          f"  p99: {gw['ack_ms']['p99']:.1f} (raw stack {raw['ack_ms']['p99']:.1f})")
    if args.seconds < STEADY_SECONDS:
        print(f"note: a run under {STEADY_SECONDS} s ends before the history store has regrouped its telemetry "
              "by device a few times: the storage bytes above are the first seconds', not the steady state's "
              f"(--seconds {STEADY_SECONDS} or more)")
    day = journal_bytes / messages * 86400 / args.interval * n
    print(f"at this rate ({n / args.interval:.0f} messages/s): {day / 1024 ** 3:.2f} GiB of journal per day")


if __name__ == "__main__":
    main()

"""Webhook deliveries/s beside a bare httpx POST loop, and ingest with 3 webhooks (one dead) vs none.

    .venv/bin/python bench/webhooks.py [--events 3000] [--connections 50] [--messages 200] [--rounds 3]
        [--catch-up 20] [--part all|deliveries|ingest] [--compare-tree DIR]

Everything runs on 127.0.0.1. The receiver is a separate process (trio + h11, keep-alive) that
answers 200 and counts events; it times the first and last request it gets.

1. Deliveries: a journal holding --events telemetry records behind a signed webhook (one event per
   request); gatewayd starts and sends its backlog. Reference, in the same run: a bare loop of
   httpx POSTs of a body of the same size over one kept-alive connection (nothing read from a
   journal, nothing signed, no cursor). Target: gatewayd >= 50 % of the bare loop. Batch mode
   (100 events per request) is shown for comparison.
2. Ingest: --connections WebSocket devices send --messages telemetry frames each (the ingest bench's
   load) to two daemons, one with no webhook, one with 3 webhooks on `up`: two to the receiver, one
   to a port where nothing listens (retried with backoff). Their rounds alternate, so both see the
   same machine load, and the daemon not measured is frozen (SIGSTOP) meanwhile, so the backlog the
   webhooks deliver between rounds takes nothing from the other's round. Target: ingest with
   webhooks >= 90 % of without (the median of the per-pair ratios). While ingest saturates the
   daemon the senders yield (gatewayd/connectors/webhooks/pacing.py) and catch up afterwards from
   the journal; how far they had got after each round is shown, and after the last one how far
   they get within --catch-up seconds.

   --part deliveries|ingest runs only one of the two. --compare-tree DIR adds, to the same
   alternating rounds, the 3-webhook daemon of another source tree (a git worktree of an older
   commit, say): a before/after under the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

import trio

from wsload import ROOT, Server, create_devices, raise_nofile, temp_dir, write_config

SECRET = "bench-secret-0123456789"


# -- receiver (its own process) ------------------------------------------------------------------------
async def receiver_main(portfile: str) -> None:
    import h11

    stats = {"requests": 0, "events": 0, "first": None, "last": None}

    async def connection(stream) -> None:
        conn = h11.Connection(h11.SERVER)
        body = bytearray()
        target = b""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(262144)
                    if not data and conn.their_state is h11.IDLE:
                        return
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    target, body = event.target, bytearray()
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    if target == b"/stats":
                        reply = json.dumps(stats).encode()
                    elif target == b"/reset":
                        stats.update(requests=0, events=0, first=None, last=None)
                        reply = b"{}"
                    else:
                        now = time.perf_counter()
                        stats["requests"] += 1
                        stats["events"] += body.count(b'"event_id"') or 1
                        stats["first"] = stats["first"] or now
                        stats["last"] = now
                        reply = b"{}"
                    for out in (h11.Response(status_code=200, headers=[("content-length", str(len(reply)))]),
                                h11.Data(data=reply), h11.EndOfMessage()):
                        await stream.send_all(conn.send(out))
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
        except (trio.BrokenResourceError, h11.RemoteProtocolError):
            return

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    Path(portfile).write_text(str(listeners[0].socket.getsockname()[1]))
    await trio.serve_listeners(connection, listeners)


class Receiver:
    def __init__(self, tmp: Path):
        portfile = tmp / "receiver.port"
        self.proc = subprocess.Popen([sys.executable, __file__, "--receiver", str(portfile)], cwd=ROOT)
        deadline = time.monotonic() + 20
        while not (portfile.exists() and portfile.read_text()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.05)
        self.port = int(portfile.read_text())
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def stats(self) -> dict:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=10).json()

    def reset(self) -> None:
        import httpx

        httpx.post(f"http://127.0.0.1:{self.port}/reset", timeout=10)

    def wait_events(self, count: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["events"] >= count or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def webhook_tables(hooks: list[dict]) -> str:
    lines = []
    for hook in hooks:
        lines.append("[[webhooks]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in hook.items()]
    return "\n".join(lines) + "\n"


# -- 1. deliveries ---------------------------------------------------------------------------------------
async def bare_loop(url: str, count: int, body: bytes) -> float:
    import httpx

    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as client:
        await client.post(url, content=body, headers=headers)
        began = time.perf_counter()
        for _ in range(count):
            response = await client.post(url, content=body, headers=headers)
            assert response.status_code == 200
        return count / (time.perf_counter() - began)


async def fill_journal(state: Path, url: str, count: int, batch: bool) -> bytes:
    """A webhook, then `count` telemetry records after it; returns one event body as sent."""
    from gatewayd import config, ops
    from gatewayd.connectors.webhooks.delivery import encode, pending_events
    from gatewayd.gateway import open_core

    settings = config.from_mapping({"server": {"state_dir": str(state)}}, "<bench>")
    async with open_core(settings, online=False) as core:
        await ops.call(core, "webhook.add", {"url": url, "name": "bench", "events": ["up"], "secret": SECRET,
                                             "batch": batch})
        device = await ops.call(core, "device.create", {"name": "bench-meter"})
        records = []
        for start in range(0, count, 1000):
            records += await core.hub.publish_many([
                ("device.telemetry", {"device_id": device["id"], "name": "bench-meter", "connector": "ws",
                                      "payload": {"temperature": 20 + i % 10 / 10, "humidity": 40 + i % 7, "seq": i}})
                for i in range(start, min(count, start + 1000))])
        sample = pending_events(records[:1], frozenset(["up"]), core.service("webhooks").rendered)
        return encode(sample, False)


# -- 2. ingest -----------------------------------------------------------------------------------------
class IngestServer:
    """A daemon with --connections registered devices, driven one round at a time."""

    def __init__(self, tmp: Path, args, hooks: list[dict], label: str, root: Path = ROOT):
        state = tmp / f"ingest-{label}"
        devices = trio.run(create_devices, state, args.connections)
        self.creds = tmp / f"devices-{label}.json"
        self.creds.write_text(json.dumps(devices))
        config = write_config(state, {"log": {"level": "warning"},
                                      "devices": {"rate_per_second": 1e6, "rate_burst": 1_000_000,
                                                  # every generated connection comes from 127.0.0.1
                                                  "max_unregistered_per_source": 100_000,
                                                  "handshakes_per_second_per_source": 1e5,
                                                  "handshake_burst_per_source": 100_000}})
        config.write_text(config.read_text() + webhook_tables(hooks))
        self.server = Server(state, config, root=root).start()

    def round(self, args) -> tuple[float, float]:
        sys.path.insert(0, str(ROOT / "bench"))
        from ingest_ws import drive

        return drive(f"ws://127.0.0.1:{self.server.port}/ws", self.creds, args, self.server.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000, help="events in the delivery backlog")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--messages", type=int, default=200, help="telemetry frames per connection per round")
    parser.add_argument("--workers", type=int, default=1, help="load-generator processes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--catch-up", type=float, default=20.0,
                        help="seconds the live webhooks get to deliver their backlog after the last round")
    parser.add_argument("--compare-tree", metavar="DIR",
                        help="also measure, in the same rounds, the 3-webhook daemon of another source tree "
                             "(e.g. a git worktree of an older commit)")
    parser.add_argument("--part", choices=("all", "deliveries", "ingest"), default="all",
                        help="run only one of the two measurements")
    args = parser.parse_args()
    raise_nofile(args.connections * 4 + 1000)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with temp_dir("gatewayd-bench-webhooks-") as tmp:
        tmp = Path(tmp)
        receiver = Receiver(tmp)
        try:
            if args.part != "ingest":
                deliveries(tmp, receiver, args)
            if args.part != "deliveries":
                ingest_ratio(tmp, receiver, args)
        finally:
            receiver.stop()


def deliveries(tmp: Path, receiver: Receiver, args) -> None:
    body = trio.run(fill_journal, tmp / "sample", receiver.url, 1, False)
    bares, singles = [], []
    for attempt in range(args.rounds):  # interleaved, so both see the same machine load
        bares.append(trio.run(bare_loop, receiver.url, args.events, body))
        receiver.reset()
        singles.append(delivery_rate(tmp, receiver, args.events, batch=False, run=attempt))
    batched = delivery_rate(tmp, receiver, args.events, batch=True)
    bare, single = max(bares), max(singles)
    print(f"bare httpx POST loop        : {bare:8.0f} requests/s ({len(body)}-byte body, one connection; "
          f"rounds: {', '.join(f'{r:.0f}' for r in bares)})")
    print(f"gatewayd webhook, per event : {single:8.0f} events/s   (rounds: {', '.join(f'{r:.0f}' for r in singles)})"
          f"   ratio {single / bare:6.1%} best/best, {median(singles) / median(bares):6.1%} median/median "
          f"(target >= 50 %)")
    print(f"gatewayd webhook, batches   : {batched:8.0f} events/s   (100 events per request)")


def three_hooks(receiver: Receiver) -> list[dict]:
    dead = f"http://127.0.0.1:{unused_port()}/gone"
    return [{"url": receiver.url, "name": "one", "events": ["up"], "secret": SECRET},
            {"url": receiver.url, "name": "two", "events": ["up"]},
            {"url": dead, "name": "dead", "events": ["up"]}]


def ingest_ratio(tmp: Path, receiver: Receiver, args) -> None:
    daemons: dict[str, IngestServer] = {}
    receivers = {"three": receiver}
    try:
        daemons["none"] = IngestServer(tmp, args, [], "none")
        daemons["three"] = IngestServer(tmp, args, three_hooks(receiver), "three")
        if args.compare_tree:
            (tmp / "other-receiver").mkdir()
            receivers["other"] = Receiver(tmp / "other-receiver")
            daemons["other"] = IngestServer(tmp, args, three_hooks(receivers["other"]), "other",
                                            Path(args.compare_tree).resolve())
        receiver.reset()
        rounds: dict[str, list[tuple[float, float]]] = {label: [] for label in daemons}
        delivered: dict[str, list[int]] = {label: [] for label in receivers}
        for _ in range(args.rounds):
            # Interleaved, so all see the same machine load; the daemons not measured are frozen
            # (SIGSTOP), so a backlog the webhooks deliver takes nothing from another's round.
            for label, measured in daemons.items():
                frozen = [d.server.pid for d in daemons.values() if d is not measured]
                for pid in frozen:
                    os.kill(pid, signal.SIGSTOP)
                try:
                    rounds[label].append(measured.round(args))
                finally:
                    for pid in frozen:
                        os.kill(pid, signal.SIGCONT)
            for label, got in receivers.items():
                delivered[label].append(got.stats()["events"])
        expected = 2 * args.rounds * args.connections * args.messages
        began = time.monotonic()
        others = [d.server.pid for label, d in daemons.items() if label != "three"]
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        try:
            after = receiver.wait_events(expected, timeout=args.catch_up)["events"]
        finally:
            for pid in others:
                os.kill(pid, signal.SIGCONT)
        took = time.monotonic() - began
    finally:
        for daemon in daemons.values():
            daemon.server.stop()
        if "other" in receivers:
            receivers["other"].stop()
    names = {"none": "no webhook        ", "three": "3 webhooks, 1 dead", "other": "3 webhooks, 1 dead"}
    for label, name in names.items():
        if label not in rounds:
            continue
        rates, cpus = [r for r, _ in rounds[label]], [c for _, c in rounds[label]]
        print(f"ingest, {name}  : {median(rates):8.0f} msg/s median, server CPU {median(cpus):5.1f} us/msg median  "
              f"(rounds: {', '.join(f'{r:.0f}' for r in rates)} msg/s; {', '.join(f'{c:.1f}' for c in cpus)} us/msg)"
              + (f"  <- gatewayd of {args.compare_tree}" if label == "other" else ""))
        if label == "none":
            continue
        pairs = list(zip(rounds["none"], rounds[label]))
        print(f"  ratio with/without: {median([t[0] / n[0] for n, t in pairs]):6.1%} by rate (median of the round "
              f"pairs), {median([n[1] / t[1] for n, t in pairs]):6.1%} by server CPU per message (target >= 90 %)")
        print(f"  events the 2 live webhooks had delivered after each round: {', '.join(map(str, delivered[label]))} "
              f"of {expected} in all" + (f"; {after} {took:.1f} s after the last round (the rest wait in the journal)"
                                         if label == "three" else ""))
    print(f"load average now {os.getloadavg()[0]:.1f} (above the CPU count, other work shares the cores and "
          "rates vary from round to round)")


def delivery_rate(tmp: Path, receiver: Receiver, count: int, batch: bool, run: int = 0) -> float:
    """Events per second from the receiver's first request of this backlog to its last."""
    state = tmp / f"deliveries-{'batch' if batch else 'single'}-{run}"
    trio.run(fill_journal, state, receiver.url, count, batch)
    receiver.reset()
    server = Server(state, write_config(state, {"log": {"level": "warning"}})).start()
    try:
        stats = receiver.wait_events(count, timeout=120)
    finally:
        server.stop()
    if stats["events"] < count:
        raise RuntimeError(f"only {stats['events']} of {count} events delivered; see {state / 'server.log'}")
    return (stats["events"] - (100 if batch else 1)) / (stats["last"] - stats["first"])


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--receiver":
        trio.run(receiver_main, sys.argv[2])
    else:
        main()

"""Monitoring fan-out: ingest and send->monitor latency with 1, 10 and 100 monitor clients.

For each number of /monitor/communications clients it measures
  - latency: devices send telemetry at a fixed total rate (default 1,000 msgs/s), with an "id"
    (durable at once; --no-ids: written within journal.flush_interval_ms); every monitor counts
    frames, up to 10 "probe" monitors time each frame from the device's send (p50 / p99);
  - ingest: devices send telemetry with an "id" and wait for each ack (durable), as fast as they
    can; the rate of acks is the ingest rate.
The same runs go against the raw stack (hypercorn + quart-trio, the same fan-out with bounded
per-client queues, no journal, no state, no mappers), measured in the same run, for the ratios.
Targets: p99 < 20 ms at 1,000 msgs/s with 10 clients; ingest with 100 clients >= 80 % of 1.
Clients run in separate processes; everything stays on 127.0.0.1. Each row also gives the CPU
the server, the load generator ("load") and the monitor processes used per second of the run, and
the disk's fsync latency timed alongside (a durable record reaches no monitor before its fsync):
on a shared 2-core box these tell a saturated daemon from a busy machine or a slow disk.

Two more servers compare ways of sending, in the same run: "per-frame" is this daemon with the
batched socket writes turned off (gatewayd/web/wsbatch.py finds no hypercorn stream, so every frame
is its own ASGI `websocket.send`), and "before" is the daemon of another checkout (`--baseline DIR`,
e.g. `git worktree add /tmp/before main`), each with its own copy of the same state.

Usage: python bench/monitor_fanout.py [--seconds 3] [--rate 1000] [--clients 1,10,100] [--no-ids] [--repeat 1]
       [--servers raw,gatewayd,per-frame,before] [--baseline DIR] [--modes rate,ingest] [--set SECTION.KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import trio  # noqa: E402

LATENCY_DEVICES = 100  # 10 msgs/s each at 1,000 msgs/s: a device waits for each durable write in turn
INGEST_DEVICES = 50
PROBES = 10
MONITORS_PER_PROCESS = 50
RAW_QUEUE = 2000
SERVERS = ("raw", "gatewayd", "per-frame", "before")
# The daemon with every frame sent as its own ASGI message (no batched writes).
PER_FRAME = ("-c", "import sys; from gatewayd.web import wsbatch; wsbatch.hypercorn_stream = lambda send: None; "
                   "from gatewayd.cli.main import main; sys.exit(main())")


# -- the raw stack ------------------------------------------------------------------------------------
def raw_server(portfile: str) -> None:
    import socket

    from hypercorn.config import Config
    from hypercorn.trio import serve
    from quart import websocket
    from quart_trio import QuartTrio

    from gatewayd.gctune import tune_for_daemon

    app = QuartTrio("raw-fanout")
    monitors: set = set()
    seq = 0

    @app.websocket("/ws")
    async def device():
        nonlocal seq
        await websocket.accept()
        await websocket.receive()
        await websocket.send('{"type":"registered"}')
        while True:
            message = json.loads(await websocket.receive())
            seq += 1
            frame = json.dumps({"CommType": "comm_rx", "MsgType": "comm_rx", "Connector": "7773", "AppEui": "",
                                "DevEui": "raw", "Port": "", "GatewayEUIs": [],
                                "Payload": json.dumps(message.get("payload"), separators=(",", ":")).encode().hex(),
                                "Extra": {"type": "telemetry"}, "DT": "", "Seq": seq}, separators=(",", ":"))
            for channel in list(monitors):
                try:
                    channel.send_nowait(frame)
                except trio.WouldBlock:
                    monitors.discard(channel)
                    channel.close()
            if "id" in message:
                await websocket.send(json.dumps({"type": "ack", "id": message["id"]}))

    @app.websocket("/monitor/communications")
    async def monitor():
        await websocket.accept()
        send, receive = trio.open_memory_channel(RAW_QUEUE)
        monitors.add(send)
        try:
            async for frame in receive:
                await websocket.send(frame)
            await websocket.close(1013, "too slow")
        finally:
            monitors.discard(send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.websocket_max_message_size = 65536

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve(app, config, task_status=task_status))
            tune_for_daemon()  # the daemon's own garbage-collector settings too
            Path(portfile).write_text(json.dumps({"port": port}))
            await trio.sleep_forever()

    trio.run(main)


# -- workers (separate processes) ---------------------------------------------------------------------------
async def _stdin_line() -> str:
    return await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)


class FrameReader:
    """A minimal WebSocket client for reading a monitoring stream cheaply (trio-websocket's parser
    costs more per frame than the server's send, so a bench with many readers would measure the
    readers). Server frames are unmasked and unfragmented; pings are answered, so the daemon's
    read timeout never cuts a reader."""

    def __init__(self, stream: trio.SocketStream):
        self.stream = stream
        self.buffer = bytearray()
        self.close_code: int | None = None
        self.count = 0  # text frames so far

    @classmethod
    async def connect(cls, url: str, key: str) -> "FrameReader":
        import base64
        import os
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        request = (f"GET {target} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                   f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {key}\r\n\r\n")
        await stream.send_all(request.encode())
        reader = cls(stream)
        while b"\r\n\r\n" not in reader.buffer:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            reader.buffer += chunk
        head, _, rest = bytes(reader.buffer).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        reader.buffer = bytearray(rest)
        return reader

    async def count_frames(self) -> None:
        """Count frames (in `count`) until the server closes, at C speed: every communication
        frame holds one `"CommType":` key, so counting that key in the bytes counts the frames,
        with no work per frame in Python. The monitors that only count must cost the box little
        next to the server's sends to them (a frame-by-frame parser here took a quarter of a core
        with 100 monitors). Instead of answering pings, which would need the frames parsed, an
        unsolicited pong goes out every few seconds (RFC 6455 5.5.3), so the daemon sees traffic."""
        marker = COUNTED_MARKER
        carry = b""  # the end of the last chunk: a marker may straddle two chunks
        tail = bytes(self.buffer)
        self.count += tail.count(marker)
        next_pong = trio.current_time() + PONG_EVERY
        while True:
            chunk = await self.stream.receive_some(262144)
            if not chunk:
                self.close_code = close_code(tail)
                return
            window = carry + chunk
            self.count += window.count(marker)
            carry = window[-(len(marker) - 1):]
            tail = (tail + chunk)[-CLOSE_TAIL:]
            if trio.current_time() >= next_pong:
                await self._pong(b"")
                next_pong = trio.current_time() + PONG_EVERY

    async def _pong(self, payload: bytes) -> None:
        # Client frames are masked; a zero mask is allowed.
        await self.stream.send_all(bytes([0x8A, 0x80 | len(payload), 0, 0, 0, 0]) + payload)

    async def frames(self):
        """Text frames as bytes, until the server closes."""
        buffer = self.buffer
        while True:
            while True:
                if len(buffer) < 2:
                    break
                opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
                offset = 2
                if length == 126:
                    if len(buffer) < 4:
                        break
                    length, offset = int.from_bytes(buffer[2:4], "big"), 4
                elif length == 127:
                    if len(buffer) < 10:
                        break
                    length, offset = int.from_bytes(buffer[2:10], "big"), 10
                if len(buffer) < offset + length:
                    break
                payload = bytes(buffer[offset:offset + length])
                del buffer[:offset + length]
                if opcode == 0x1:
                    self.count += 1
                    yield payload
                elif opcode == 0x9:
                    await self._pong(payload)
                elif opcode == 0x8:
                    self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    return
            chunk = await self.stream.receive_some(262144)
            if not chunk:
                return
            buffer += chunk


COUNTED_MARKER = b'"CommType":'
PONG_EVERY = 5.0
CLOSE_TAIL = 256  # bytes kept from the end of the stream: the close frame, if any, is there


def close_code(tail: bytes) -> int | None:
    """The code of the close frame that ends `tail` (0x88, a length < 126, the code, a reason)."""
    for start in range(len(tail) - 2, -1, -1):
        if tail[start] == 0x88 and start + 2 + (tail[start + 1] & 0x7F) == len(tail):
            return int.from_bytes(tail[start + 2:start + 4], "big") if tail[start + 1] >= 2 else None
    return None


async def monitor_worker(url: str, key: str, count: int, probes: int) -> None:
    readers: list[FrameReader] = []
    samples: list[float] = []
    closed: dict[str, int] = {}
    marker = b'"Payload":"'

    async def one(index: int, task_status=trio.TASK_STATUS_IGNORED) -> None:
        reader = await FrameReader.connect(url, key)
        readers.append(reader)
        task_status.started()
        async with reader.stream:
            if index >= probes:
                await reader.count_frames()
            else:
                async for frame in reader.frames():
                    received = time.time()
                    start = frame.find(marker) + len(marker)
                    hex_payload = frame[start:frame.index(b'"', start)]
                    if hex_payload:
                        samples.append((received - json.loads(bytes.fromhex(hex_payload.decode()))["t0"]) * 1000)
            code = str(reader.close_code)
            closed[code] = closed.get(code, 0) + 1

    async with trio.open_nursery() as nursery:
        for index in range(count):
            await nursery.start(one, index)
        print("ready", flush=True)
        await _stdin_line()
        frames = sum(reader.count for reader in readers)
        print(json.dumps({"frames": frames, "samples": samples, "closed": closed}), flush=True)
        nursery.cancel_scope.cancel()


async def device_worker(url: str, mode: str, rate: float, seconds: float, devices_file: str,
                        with_ids: bool) -> None:
    from trio_websocket import open_websocket_url

    devices = json.loads(Path(devices_file).read_text())
    sent = acked = 0
    sockets = []
    async with trio.open_nursery() as nursery:
        async def connect(device, task_status=trio.TASK_STATUS_IGNORED):
            async with open_websocket_url(url) as ws:
                await ws.send_message(json.dumps({"type": "register", "device_id": device["id"],
                                                  "token": device["token"]}))
                reply = json.loads(await ws.get_message())
                assert reply["type"] == "registered", reply
                sockets.append(ws)
                task_status.started()
                await trio.sleep_forever()

        for device in devices:
            await nursery.start(connect, device)
        print("ready", flush=True)
        await _stdin_line()
        began = trio.current_time()
        deadline = began + seconds

        async def paced(ws, offset: float):
            # Telemetry with an "id" is durable at once (group commit) and acknowledged; without
            # one it is written within journal.flush_interval_ms, and monitors see a record only
            # once it is written. The acks are read by a task of their own: sending never waits.
            nonlocal sent
            interval = len(sockets) / rate
            at = began + offset
            async with trio.open_nursery() as acks:
                if with_ids:
                    acks.start_soon(drain, ws)
                n = 0
                while at < deadline:
                    await trio.sleep_until(at)
                    message = {"type": "telemetry", "payload": {"t0": time.time()}}
                    if with_ids:
                        n += 1
                        message["id"] = n
                    await ws.send_message(json.dumps(message))
                    sent += 1
                    at += interval
                acks.cancel_scope.deadline = trio.current_time() + 2

        async def drain(ws):
            nonlocal acked
            while True:
                if json.loads(await ws.get_message()).get("type") == "ack":
                    acked += 1

        async def closed_loop(ws):
            nonlocal sent, acked
            n = 0
            while trio.current_time() < deadline:
                n += 1
                await ws.send_message(json.dumps({"type": "telemetry", "id": n, "payload": {"t0": time.time()}}))
                sent += 1
                while json.loads(await ws.get_message()).get("type") != "ack":
                    pass
                acked += 1

        async with trio.open_nursery() as load:
            for index, ws in enumerate(sockets):
                if mode == "rate":
                    load.start_soon(paced, ws, index / rate)
                else:
                    load.start_soon(closed_loop, ws)
        elapsed = min(trio.current_time(), deadline) - began
        print(json.dumps({"sent": sent, "acked": acked, "elapsed": elapsed}), flush=True)
        nursery.cancel_scope.cancel()


# -- orchestration --------------------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (contention on the box barely changes it)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, timeout: float = 60.0) -> None:
    """Wait until the server is idle (it may still be working off the previous scenario's backlog)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.05:
            return


class FsyncProbe:
    """Times a small append + fsync every 10 ms on the state directory's filesystem while a
    scenario runs: a durable record cannot reach a monitor faster than the disk confirms it (and
    it may wait for the write in flight first), so this is the disk's floor in the same run."""

    def __init__(self, directory: Path):
        import threading

        self.path = directory / "fsync-probe"
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import os

        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while not self._stop.wait(0.01):
                began = time.perf_counter()
                os.write(fd, b"x" * 300 + b"\n")
                os.fsync(fd)
                self.samples.append((time.perf_counter() - began) * 1000)
        finally:
            os.close(fd)
            self.path.unlink()

    def __enter__(self) -> "FsyncProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def run_scenario(base: str, key: str, devices_file: Path, devices: int, monitors: int, mode: str,
                 rate: float, seconds: float, server_pid: int, with_ids: bool = True) -> dict:
    from wsload import read_line, spawn_worker

    settle(server_pid)
    workers = []
    remaining, probes = monitors, PROBES
    while remaining > 0:
        count = min(remaining, MONITORS_PER_PROCESS)
        url = base + "/monitor/communications?types=comm_rx"
        workers.append(spawn_worker(__file__, ["monitors", url, key, str(count), str(min(probes, count))]))
        probes -= min(probes, count)
        remaining -= count
    try:
        for worker in workers:
            assert read_line(worker, 60) == "ready"
        subset = json.loads(devices_file.read_text())[:devices]
        subset_file = devices_file.with_name(f"devices-{devices}.json")
        subset_file.write_text(json.dumps(subset))
        driver = spawn_worker(__file__, ["devices", base + "/ws", mode, str(rate), str(seconds), str(subset_file),
                                         "ids" if with_ids else "no-ids"])
        try:
            assert read_line(driver, 60) == "ready"
            watched = [server_pid, driver.pid] + [worker.pid for worker in workers]
            cpu_before = [cpu_seconds(pid) for pid in watched]
            with FsyncProbe(devices_file.parent) as probe:
                driver.stdin.write("go\n")
                driver.stdin.flush()
                load = json.loads(read_line(driver, seconds + 60))
            cpu_used = [cpu_seconds(pid) - before for pid, before in zip(watched, cpu_before)]
            load_average = Path("/proc/loadavg").read_text().split()[0]
            cpu, driver_cpu, monitors_cpu = cpu_used[0], cpu_used[1], sum(cpu_used[2:])
        finally:
            driver.kill()
            driver.wait()
        time.sleep(1.0)  # let the last frames arrive
        results = []
        for worker in workers:
            worker.stdin.write("stop\n")
            worker.stdin.flush()
            results.append(json.loads(read_line(worker, 30)))
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    samples = [s for r in results for s in r["samples"]]
    dropped = sum(n for r in results for code, n in r["closed"].items() if code == "1013")
    frames = sum(r["frames"] for r in results)
    return {"sent": load["sent"], "acked": load["acked"], "elapsed": load["elapsed"],
            "sent_per_s": load["sent"] / load["elapsed"], "ingest_per_s": load["acked"] / load["elapsed"],
            "delivered": frames / max(1, load["sent"] * monitors), "p50": percentile(samples, 50),
            "p99": percentile(samples, 99), "dropped": dropped,
            "cpu_ms_per_msg": 1000 * cpu / max(1, load["sent"]), "cpu_share": cpu / load["elapsed"],
            "driver_cpu": driver_cpu / load["elapsed"], "monitors_cpu": monitors_cpu / load["elapsed"],
            "fsync_p50": percentile(probe.samples, 50), "fsync_p99": percentile(probe.samples, 99),
            "loadavg": load_average}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--clients", default="1,10,100")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds over all scenarios; each row shows the round with the median figure")
    parser.add_argument("--no-ids", action="store_true",
                        help="latency runs send telemetry without an id: not durable at once, written "
                             "within journal.flush_interval_ms (default 100 ms), and only then monitored")
    parser.add_argument("--servers", default="raw,gatewayd",
                        help=f"which servers to run, of {','.join(SERVERS)} (before needs --baseline)")
    parser.add_argument("--baseline", type=Path, help="a gatewayd checkout to run as the server 'before'")
    parser.add_argument("--modes", default="rate,ingest", help="which scenarios to run: rate (latency), ingest")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a daemon setting for this run (a TOML value), e.g. monitor.writes_per_second=1000")
    parser.add_argument("--worker", nargs="+")
    parser.add_argument("--raw-server")
    args = parser.parse_args()
    if args.raw_server:
        return raw_server(args.raw_server)
    if args.worker:
        kind, *rest = args.worker
        if kind == "monitors":
            url, key, count, probes = rest
            return trio.run(monitor_worker, url, key, int(count), int(probes))
        url, mode, rate, seconds, devices_file, ids = rest
        return trio.run(device_worker, url, mode, float(rate), float(seconds), devices_file, ids == "ids")

    import subprocess

    from wsload import ROOT, Server, create_devices, raise_nofile, temp_dir, write_config

    raise_nofile(4096)
    clients = [int(c) for c in args.clients.split(",")]
    servers = [name for name in SERVERS if name in args.servers.split(",")]
    if "before" in servers and args.baseline is None:
        parser.error("the server 'before' needs --baseline DIR")
    modes = args.modes.split(",")
    with temp_dir("gatewayd-bench-monitor-") as tmp:
        tmp = Path(tmp)
        state = tmp / "state"
        state.mkdir()
        devices = trio.run(create_devices, state, max(LATENCY_DEVICES, INGEST_DEVICES))
        devices_file = tmp / "devices.json"
        devices_file.write_text(json.dumps(devices))
        created = subprocess.run([sys.executable, "-m", "gatewayd", "apikey", "create", "bench", "--json",
                                  "--state-dir", str(state)], cwd=ROOT, capture_output=True, text=True, check=True)
        key = json.loads(created.stdout)["key"]
        settings = {"devices": {"rate_per_second": 1e6, "rate_burst": 1_000_000}, "log": {"level": "warning"}}
        for assignment in args.set:
            name, _, value = assignment.partition("=")
            section, _, setting = name.partition(".")
            settings.setdefault(section, {})[setting] = tomllib.loads(f"v = {value}")["v"]
        config = write_config(tmp, settings)
        portfile = tmp / "raw.json"
        raw = subprocess.Popen([sys.executable, __file__, "--raw-server", str(portfile)], cwd=ROOT)
        daemons = {}
        for name in [n for n in servers if n != "raw"] or ["gatewayd"]:
            copy = tmp / f"state-{name}"
            shutil.copytree(state, copy)
            daemons[name] = Server(copy, config, root=args.baseline if name == "before" else ROOT,
                                   entry=PER_FRAME if name == "per-frame" else ("-m", "gatewayd"))
        try:
            for server in daemons.values():
                server.start()
            deadline = time.monotonic() + 30
            while not portfile.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("the raw server did not start")
                time.sleep(0.05)
            bases = {"raw": f"ws://127.0.0.1:{json.loads(portfile.read_text())['port']}",
                     **{name: f"ws://127.0.0.1:{server.port}" for name, server in daemons.items()}}
            pids = {"raw": raw.pid, **{name: server.pid for name, server in daemons.items()}}
            runs: dict[tuple, list[dict]] = {}
            for _ in range(args.repeat):  # rounds over every scenario, so load drift hits all alike
                for name in servers:
                    for monitors in clients:
                        if "rate" in modes:
                            runs.setdefault((name, monitors, "rate"), []).append(run_scenario(
                                bases[name], key, devices_file, LATENCY_DEVICES, monitors, "rate", args.rate,
                                args.seconds, pids[name], with_ids=not args.no_ids))
                        if "ingest" in modes:
                            runs.setdefault((name, monitors, "ingest"), []).append(run_scenario(
                                bases[name], key, devices_file, INGEST_DEVICES, monitors, "ingest", 0,
                                args.seconds, pids[name]))
            rows = {scenario: median_run(found, "p99" if scenario[2] == "rate" else "ingest_per_s")
                    for scenario, found in runs.items()}
        finally:
            for server in daemons.values():
                if server.proc is not None:
                    server.stop()
            raw.terminate()
            raw.wait(10)
    report(rows, servers, clients, args.rate, not args.no_ids)


def median_run(found: list[dict], by: str) -> dict:
    """The run whose `by` is the median of the rounds (a whole run, so its figures fit together)."""
    return sorted(found, key=lambda run: run[by])[len(found) // 2]


def fsync(row: dict) -> str:
    return f"{row['fsync_p50']:.1f}/{row['fsync_p99']:.1f}"


def report(rows: dict, servers: list[str], clients: list[int], rate: float, with_ids: bool) -> None:
    import os

    print(f"\n{os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f} (other work on the box skews all figures)")
    kind = "with ids (durable, acknowledged)" if with_ids else "without ids (written within the flush interval)"
    columns = (f"{'delivered':>9} {'p50 ms':>7} {'p99 ms':>7} {'dropped':>7} {'srv CPU':>7} {'CPU ms/msg':>10} "
               f"{'load CPU':>8} {'mon CPU':>7} {'fsync p50/p99 ms':>16} {'loadavg':>7}")

    def figures(r: dict) -> str:
        return (f"{r['delivered']:>9.1%} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['dropped']:>7} {r['cpu_share']:>7.0%} "
                f"{r['cpu_ms_per_msg']:>10.3f} {r['driver_cpu']:>8.0%} {r['monitors_cpu']:>7.0%} {fsync(r):>16} "
                f"{r['loadavg']:>7}")

    if any(scenario[2] == "rate" for scenario in rows):
        print(f"\nlatency at {rate:g} msgs/s offered ({LATENCY_DEVICES} devices, telemetry {kind}), "
              "send -> monitor receive")
        print(f"{'server':>9} {'monitors':>8} {'sent/s':>8} {columns}")
        for name in servers:
            for m in clients:
                r = rows[name, m, "rate"]
                print(f"{name:>9} {m:>8} {r['sent_per_s']:>8.0f} {figures(r)}")
    if any(scenario[2] == "ingest" for scenario in rows):
        print(f"\ningest: {INGEST_DEVICES} devices, each waits for its ack (durable in gatewayd)")
        print(f"{'server':>9} {'monitors':>8} {'ingest/s':>9} {'vs 1':>6} {columns}")
        for name in servers:
            base = rows[name, clients[0], "ingest"]["ingest_per_s"]
            for m in clients:
                r = rows[name, m, "ingest"]
                print(f"{name:>9} {m:>8} {r['ingest_per_s']:>9.0f} {r['ingest_per_s'] / base:>6.0%} {figures(r)}")
    both_modes = len({scenario[2] for scenario in rows}) == 2
    for other in [name for name in servers if name != "gatewayd"]:
        if "gatewayd" not in servers or not both_modes:
            break
        print(f"\ngatewayd / {other}" + (" stack" if other == "raw" else ""))
        for m in clients:
            g, r = rows["gatewayd", m, "ingest"], rows[other, m, "ingest"]
            gl, rl = rows["gatewayd", m, "rate"], rows[other, m, "rate"]
            print(f"  {m:>3} monitors: ingest {g['ingest_per_s'] / r['ingest_per_s']:.2f}x, "
                  f"p99 at {rate:g}/s {gl['p99']:.2f} ms vs {rl['p99']:.2f} ms, "
                  f"CPU ms/msg {gl['cpu_ms_per_msg']:.3f} vs {rl['cpu_ms_per_msg']:.3f}")
    if ("gatewayd", 10, "rate") in rows:
        p99 = rows["gatewayd", 10, "rate"]["p99"]
        print(f"\ntarget p99 < 20 ms at {rate:g} msgs/s with 10 monitors: {p99:.2f} ms -> "
              f"{'met' if p99 < 20 else 'NOT met'}")
    if ("gatewayd", 1, "ingest") in rows and ("gatewayd", 100, "ingest") in rows:
        ratio = rows["gatewayd", 100, "ingest"]["ingest_per_s"] / rows["gatewayd", 1, "ingest"]["ingest_per_s"]
        print(f"target ingest with 100 monitors >= 80 % of 1: {ratio:.0%} -> {'met' if ratio >= 0.8 else 'NOT met'}")

if __name__ == "__main__":
    main()

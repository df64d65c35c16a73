"""LoRaWAN uplinks/s through the whole path (UDP, MIC, decrypt, journal, monitor), beside the raw stack.

Simulated packet forwarders run in separate processes, each with its own ABP devices, and send
PUSH_DATA (every frame distinct and correctly encrypted, every device with its own keys) to 127.0.0.1. Three runs:
1. raw: the same senders against the bare stack: a trio UDP loop answering PUSH_ACK that pushes one
   fixed frame per uplink to a hypercorn/quart-trio WebSocket client (no parsing, crypto, journal);
2. max: gatewayd (a real `gatewayd serve` process) offered more than it can take; the figure is the
   rate of comm_rx frames reaching a /monitor/communications client;
3. half: gatewayd at half that rate, which must lose nothing (every frame sent is a comm_rx).

With --mac-share 0.1 one uplink in ten carries a MAC command in FOpts (LinkCheckReq, DeviceTimeReq or
a DevStatusAns, in turn), and --adr sets the ADR bit on every uplink (the daemon's ADR is on by
default): the MAC layer's cost on the same path.

Usage: python bench/lorawan_uplinks.py [--gateways 4] [--devices 1000] [--seconds 5] [--offer 20000]
                                       [--per-push 1] [--mac-share 0.1] [--adr]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from gatewayd.connectors.lorawan import gwmp, frames as lorawan  # noqa: E402
from gatewayd.connectors.lorawan import packets
from gatewayd.connectors.lorawan.frames import MType  # noqa: E402

BURST_SECONDS = 0.01  # senders wake every 10 ms and send what is due (cheap pacing)
NWK = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
APP = bytes.fromhex("3c4fcf098815f7aba6d2ae2816157e2b")


def dev_addr(i: int) -> int:
    return 0x2600_0000 + i


def device_keys(i: int) -> tuple[bytes, bytes]:
    """(NwkSKey, AppSKey) of device i: every device has its own, as in the field."""
    tag = i.to_bytes(4, "big")
    return NWK[:12] + tag, APP[:12] + tag


def gateway_eui(g: int) -> str:
    return f"aa555a00000{g:05x}"


# -- sender processes ------------------------------------------------------------------------------------
# MAC commands a device may send unprompted, hex: LinkCheckReq, DeviceTimeReq, DevStatusAns(200, 7 dB)
MAC_IN_UPLINKS = (bytes.fromhex("02"), bytes.fromhex("0d"), bytes.fromhex("06c807"))


def sender(port: int, g: int, devices: list[int], fcnt_start: int, count: int, rate: float, per_push: int,
           ready, go, results, mac_share: float = 0.0, adr: bool = False) -> None:
    """Precompute `count` uplinks (`per_push` rxpk per PUSH_DATA), then send them at `rate`/s once
    `go` is set."""
    eui = gateway_eui(g)
    packets = []
    per_device = len(devices)
    mac_every = round(1 / mac_share) if mac_share else 0
    for i in range(count):
        device = devices[i % per_device]
        fcnt = fcnt_start + i // per_device
        nwk, app = device_keys(device)
        f_opts = MAC_IN_UPLINKS[(i // mac_every) % len(MAC_IN_UPLINKS)] if mac_every and i % mac_every == 0 else b""
        phy = lorawan.build_data_frame(MType.UNCONFIRMED_DATA_UP, dev_addr(device), fcnt, nwk, app, f_port=1,
                                       payload=b"bench" + i.to_bytes(4, "big"), f_opts=f_opts, adr=adr)
        packets.append(packets.RxPacket(tmst=(i * 1000) & 0xFFFF_FFFF, chan=0, rfch=0, freq=868.1, modu="LORA",
                                     datr="SF7BW125", codr="4/5", rssi=-60, lsnr=7.5, data=phy))
    datagrams = [gwmp.push_data(2, n & 0xFFFF, eui, packets[i:i + per_push])
                 for n, i in enumerate(range(0, count, per_push))]
    rate = rate / per_push
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    ready.release()
    go.wait()
    began = time.perf_counter()
    sent = acks = 0
    burst = max(1, int(rate * BURST_SECONDS))
    for start in range(0, len(datagrams), burst):
        due = began + start / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        for datagram in datagrams[start:start + burst]:
            try:
                sock.send(datagram)
                sent += 1
            except (BlockingIOError, ConnectionRefusedError):
                pass
        try:
            while True:
                sock.recv(64)
                acks += 1
        except (BlockingIOError, ConnectionRefusedError):
            pass
    elapsed = time.perf_counter() - began
    deadline = time.perf_counter() + 0.5
    while time.perf_counter() < deadline:
        try:
            sock.recv(64)
            acks += 1
        except BlockingIOError:
            time.sleep(0.01)
        except ConnectionRefusedError:
            break
    results.put({"gateway": g, "sent": min(sent * per_push, count), "acks": acks, "seconds": elapsed})


def run_senders(port: int, gateways: int, devices: int, fcnt_start: int, rate: float, seconds: float,
                on_go=None, per_push: int = 1, target=sender, mac_share: float = 0.0,
                adr: bool = False) -> list[dict]:
    """`gateways` processes running `target` (default: a packet forwarder), started together."""
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    per_gateway = devices // gateways
    count = int(rate / gateways * seconds)
    procs = []
    for g in range(gateways):
        mine = list(range(g * per_gateway, (g + 1) * per_gateway))
        extra = (mac_share, adr) if target is sender else ()
        p = ctx.Process(target=target, args=(port, g, mine, fcnt_start, count, rate / gateways, per_push, ready,
                                                   go, results, *extra))
        p.start()
        procs.append(p)
    for _ in procs:
        ready.acquire()
    if on_go:
        on_go()
    go.set()
    out = [results.get(timeout=seconds * 3 + 60) for _ in procs]
    for p in procs:
        p.join(10)
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used (Linux /proc; None elsewhere). CPU time per
    uplink depends far less on what else loads the machine than a rate does."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_frame(before: float | None, after: float | None, frames: int) -> float | None:
    """Microseconds of CPU per frame, or None when it cannot be measured."""
    if before is None or after is None or not frames:
        return None
    return (after - before) / frames * 1e6


# -- the raw stack ----------------------------------------------------------------------------------------
RAW_FRAME = json.dumps({
    "CommType": "comm_rx", "MsgType": "comm_rx", "Connector": "6c6f726177616e", "AppEui": "",
    "DevEui": "70b3d57e00000001", "Port": "1", "GatewayEUIs": ["aa555a0000000000"], "Payload": "62656e6368000001",
    "Extra": {"rssi": "-60", "snr": "7.5", "sf": "7", "modBW": "125", "frequency": "868.1", "channel": "0",
              "seqno": "1", "adr": "false", "duplicate": "false", "confirmed": "false", "ack": "false", "dr": "5",
              "devaddr": "26000001"},
    "DT": "2026-01-01T00:00:00.0000000+00:00", "Seq": 1}, separators=(",", ":"))


async def raw_stack_server(port_file: str) -> None:
    """The same stack ends without gatewayd: a trio UDP loop that answers PUSH_ACK and hands one
    fixed frame per datagram to a quart-trio WebSocket route served by hypercorn. No parsing,
    crypto, journal or state."""
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from quart import websocket
    from quart_trio import QuartTrio

    from gatewayd.gctune import tune_for_daemon

    app = QuartTrio("raw")
    feeds: list = []

    @app.websocket("/monitor/communications")
    async def feed():
        await websocket.accept()
        send, receive = trio.open_memory_channel(200_000)
        feeds.append(send)
        async for text in receive:
            await websocket.send(text)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        http_port = probe.getsockname()[1]
    config = Config()
    config.bind = [f"127.0.0.1:{http_port}"]
    config.accesslog = None
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    await sock.bind(("127.0.0.1", 0))
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: serve(app, config, shutdown_trigger=shutdown.wait))
        tune_for_daemon()  # the daemon's own garbage-collector settings too
        Path(port_file).write_text(json.dumps({"udp": sock.getsockname()[1], "http": http_port}))

        async def stop():
            with trio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    shutdown.set()
                    nursery.cancel_scope.cancel()
                    return
        nursery.start_soon(stop)
        while True:
            data, addr = await sock.recvfrom(65536)
            await sock.sendto(data[:3] + b"\x01", addr)
            for _ in range(data.count(b'"tmst"')):  # one frame per uplink carried
                for send in feeds:
                    try:
                        send.send_nowait(RAW_FRAME)
                    except trio.WouldBlock:
                        pass


def measure_raw(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "ports"
        proc = subprocess.Popen([sys.executable, __file__, "--raw-server", str(port_file)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not port_file.exists() or not port_file.read_text():
                time.sleep(0.02)
            ports = json.loads(port_file.read_text())
            deadline = time.monotonic() + 10
            while True:
                try:
                    monitor = MonitorCount(ports["http"], "-")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            started = {}
            cpu_before = cpu_seconds(proc.pid)
            sent = run_senders(ports["udp"], args.gateways, args.devices, 0, args.offer, args.seconds,
                               on_go=lambda: started.setdefault("t", time.perf_counter()), per_push=args.per_push)
            monitor.settle()
            cpu_after = cpu_seconds(proc.pid)
            monitor.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    elapsed = (monitor.last - started["t"]) if monitor.count else 0
    return {"sent": sum(s["sent"] for s in sent), "frames": monitor.count, "seconds": elapsed,
            "rate": monitor.count / elapsed if elapsed else 0,
            "cpu_us": cpu_per_frame(cpu_before, cpu_after, monitor.count)}


# -- gatewayd ---------------------------------------------------------------------------------------------
async def prepare_state(state_dir: Path, devices: int) -> str:
    from gatewayd import ops
    from gatewayd.config import from_mapping
    from gatewayd.gateway import open_core

    settings = from_mapping({"server": {"state_dir": str(state_dir)}})
    async with open_core(settings, online=False) as core:
        key = (await ops.call(core, "apikey.create", {"name": "bench"}))["key"]

        async def create(i: int) -> None:
            nwk, app = device_keys(i)
            await ops.call(core, "device.create", {"name": f"bench-{i}", "lorawan": {
                "dev_eui": f"70b3d57e{i:08x}", "dev_addr": lorawan.dev_addr_hex(dev_addr(i)),
                "nwk_s_key": nwk.hex(), "app_s_key": app.hex()}})

        async with trio.open_nursery() as nursery:  # concurrent creations share fsyncs
            for i in range(devices):
                nursery.start_soon(create, i)
    return key


class Daemon:
    def __init__(self, state_dir: Path, udp_port: int, config: Path):
        self.state_dir = state_dir
        self.udp_port = udp_port
        runfile = state_dir / "run.json"
        if runfile.exists():
            runfile.unlink()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gatewayd", "serve", "--config", str(config), "--state-dir", str(state_dir),
             "--host", "127.0.0.1", "--port", "0", "--udp-port", str(udp_port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not runfile.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gatewayd did not start")
            time.sleep(0.05)
        self.http_port = json.loads(runfile.read_text())["http_port"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)


class MonitorCount:
    """Counts comm_rx frames on /monitor/communications with a minimal client in its own thread:
    after the WebSocket handshake it only counts the frames' CommType in the raw byte stream
    (server frames are not masked), so the client costs next to nothing."""

    PATTERN = b'"CommType":"comm_rx"'

    def __init__(self, http_port: int, key: str):
        import base64
        import threading

        self.count = 0
        self.last = 0.0
        self.closed: str | None = None
        self._stop = False
        self.sock = socket.create_connection(("127.0.0.1", http_port))
        nonce = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /monitor/communications?types=comm_rx&connector=lorawan HTTP/1.1\r\n"
                           f"Host: 127.0.0.1:{http_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Authorization: Bearer {key}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        status, _, rest = head.partition(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n")[0]:
            raise RuntimeError(f"monitor handshake refused: {status[:80]!r}")
        self._tail = rest
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pattern, keep = self.PATTERN, len(self.PATTERN) - 1
        data = self._tail
        self.sock.settimeout(0.2)
        while not self._stop:
            found = data.count(pattern)
            if found:
                self.count += found
                self.last = time.perf_counter()
            data = data[-keep:]
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            if not chunk:
                self.closed = "connection closed"
                return
            if chunk[:1] == b"\x88":
                self.closed = "close frame"
            data += chunk

    def settle(self, quiet: float = 1.0, limit: float = 60.0) -> None:
        """Wait until no frame arrived for `quiet` seconds."""
        deadline = time.perf_counter() + limit
        seen, since = -1, time.perf_counter()
        while time.perf_counter() < deadline and time.perf_counter() - since < quiet:
            if self.count != seen:
                seen, since = self.count, time.perf_counter()
            time.sleep(0.05)

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        self.sock.close()


def uplink_counter(http_port: int) -> int:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5).read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("gatewayd_lorawan_uplinks_total"))


def gatewayd_run(daemon: Daemon, key: str, args, rate: float, fcnt_start: int, target=sender) -> dict:
    """One run of `target` senders (packet forwarders over UDP; others connect to the HTTP port)."""
    monitor = MonitorCount(daemon.http_port, key)
    before = uplink_counter(daemon.http_port)
    started = {}
    cpu_before = cpu_seconds(daemon.proc.pid)
    port = daemon.udp_port if target is sender else daemon.http_port
    sent = run_senders(port, args.gateways, args.devices, fcnt_start, rate, args.seconds,
                       on_go=lambda: started.setdefault("t", time.perf_counter()), per_push=args.per_push,
                       target=target, mac_share=getattr(args, "mac_share", 0.0), adr=getattr(args, "adr", False))
    monitor.settle()
    cpu_after = cpu_seconds(daemon.proc.pid)
    monitor.close()
    accepted = uplink_counter(daemon.http_port) - before
    total_sent = sum(s["sent"] for s in sent)
    elapsed = (monitor.last - started["t"]) if monitor.count else 0
    return {"offered": rate, "sent": total_sent, "send_seconds": max(s["seconds"] for s in sent),
            "accepted": accepted, "comm_rx": monitor.count, "seconds": elapsed,
            "rate": monitor.count / elapsed if elapsed else 0, "monitor_closed": monitor.closed,
            "cpu_us": cpu_per_frame(cpu_before, cpu_after, monitor.count),
            "frames_per_device": int(rate / args.gateways * args.seconds) // (args.devices // args.gateways) + 1}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(tmp: Path, devices: int) -> tuple[Daemon, str]:
    """A `gatewayd serve` process on a fresh state in `tmp` with `devices` ABP devices, and an API key."""
    state_dir = tmp / "state"
    key = trio.run(prepare_state, state_dir, devices)
    config = tmp / "gatewayd.toml"
    config.write_text("[monitor]\nqueue_size = 200000\n[log]\nlevel = \"warning\"\n")
    return Daemon(state_dir, free_udp_port(), config), key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateways", type=int, default=4)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--offer", type=float, default=20000.0, help="uplinks/s offered in the raw and max runs")
    parser.add_argument("--per-push", type=int, default=1,
                        help="rxpk per PUSH_DATA (1: worst case; a busy forwarder sends up to 8)")
    parser.add_argument("--mac-share", type=float, default=0.0,
                        help="share of uplinks with a MAC command in FOpts (e.g. 0.1)")
    parser.add_argument("--adr", action="store_true", help="set the ADR bit on every uplink")
    parser.add_argument("--raw-server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        trio.run(raw_stack_server, args.raw_server)
        return
    print(f"{args.gateways} gateway processes, {args.devices} ABP devices, {args.per_push} rxpk per PUSH_DATA, "
          f"{args.seconds:g} s per run, MAC commands in {args.mac_share:.0%} of uplinks, ADR bit "
          f"{'on' if args.adr else 'off'}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    raw = measure_raw(args)
    print(f"raw stack (trio UDP + PUSH_ACK, one fixed frame per uplink over hypercorn/quart-trio WebSocket): "
          f"{raw['rate']:,.0f} frames/s ({raw['frames']:,} of {raw['sent']:,} uplinks sent)")
    with tempfile.TemporaryDirectory() as tmp:
        daemon, key = start_daemon(Path(tmp), args.devices)
        try:
            best = gatewayd_run(daemon, key, args, args.offer, 0)
            print(f"gatewayd max: {best['rate']:,.0f} uplinks/s to the monitor ({best['comm_rx']:,} comm_rx of "
                  f"{best['sent']:,} sent at {best['offered']:,.0f}/s offered; {best['accepted']:,} accepted)"
                  + (f"; monitor closed: {best['monitor_closed']}" if best["monitor_closed"] else ""))
            half_rate = best["rate"] / 2
            half = gatewayd_run(daemon, key, args, half_rate, best["frames_per_device"] + 1)
            lost = half["sent"] - half["comm_rx"]
            print(f"gatewayd at half ({half_rate:,.0f}/s): {half['sent']:,} sent, {half['comm_rx']:,} comm_rx, "
                  f"{half['accepted']:,} accepted -> {'zero loss' if lost == 0 else f'{lost:,} LOST'}")
        finally:
            daemon.stop()
    ratio = best["rate"] / raw["rate"] if raw["rate"] else 0
    print(f"ratio gatewayd/raw: {ratio:.2f}   target >= 5,000 uplinks/s: "
          f"{'met' if best['rate'] >= 5000 else 'NOT met'}")
    if raw["cpu_us"] and best["cpu_us"] and half["cpu_us"]:
        print(f"CPU per uplink: raw stack {raw['cpu_us']:.0f} us, gatewayd {best['cpu_us']:.0f} us at max and "
              f"{half['cpu_us']:.0f} us at half (raw/gatewayd at half: {raw['cpu_us'] / half['cpu_us']:.2f}; "
              f"a core's worth at half: {1e6 / half['cpu_us']:,.0f} uplinks/s)")


if __name__ == "__main__":
    main()

"""LoRaWAN uplinks/s through LoRa Basics Station gateways beside packet forwarders (UDP), same daemon, same run.

One `gatewayd serve` process with ABP devices. Each round offers the same load twice: from
simulated packet forwarders (PUSH_DATA over UDP, as bench/lorawan_uplinks.py) and from simulated
stations (`updf` messages over one WebSocket each to /router/<eui>), every frame distinct and
correctly encrypted. The figure is the rate of comm_rx frames reaching a /monitor/communications
client; the target is Station >= 80 % of UDP. Senders run in separate processes; a station's
client frames carry an all-zero mask so the sender costs next to nothing.

Usage: python bench/station_uplinks.py [--gateways 4] [--devices 1000] [--seconds 5] [--offer 20000]
                                       [--rounds 1]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorawan_uplinks import (BURST_SECONDS, dev_addr, device_keys, gatewayd_run, start_daemon,  # noqa: E402
                             uplink_counter)

from gatewayd.connectors.lorawan import frames as lorawan  # noqa: E402
from gatewayd.connectors.lorawan.frames import MType  # noqa: E402


def station_eui(g: int) -> str:
    return f"b827ebff{g:08x}"


def _frame(text: bytes) -> bytes:
    """A client text frame with an all-zero mask (valid, and the payload stays as it is)."""
    size = len(text)
    head = bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0x80 | 126)) + struct.pack(">H", size)
    return head + b"\0\0\0\0" + text


def updf(phy: bytes, xtime: int) -> bytes:
    opts_end = 8 + (phy[5] & 0x0F)
    return json.dumps({
        "msgtype": "updf", "MHdr": phy[0], "DevAddr": struct.unpack("<i", phy[1:5])[0], "FCtrl": phy[5],
        "FCnt": int.from_bytes(phy[6:8], "little"), "FOpts": phy[8:opts_end].hex(), "FPort": phy[opts_end],
        "FRMPayload": phy[opts_end + 1:-4].hex(), "MIC": struct.unpack("<i", phy[-4:])[0], "DR": 5,
        "Freq": 868_100_000, "upinfo": {"rctx": 0, "xtime": xtime, "gpstime": 0, "fts": -1, "rssi": -60,
                                        "snr": 7.5, "rxtime": time.time()}, "RefTime": 0.0,
    }, separators=(",", ":")).encode()


def station_sender(http_port: int, g: int, devices: list[int], fcnt_start: int, count: int, rate: float,
                   per_push: int, ready, go, results) -> None:
    """Connect as station `g`, say `version`, then send `count` uplinks at `rate`/s once `go` is set."""
    frames = []
    for i in range(count):
        device = devices[i % len(devices)]
        nwk, app = device_keys(device)
        phy = lorawan.build_data_frame(MType.UNCONFIRMED_DATA_UP, dev_addr(device), fcnt_start + i // len(devices),
                                       nwk, app, f_port=1, payload=b"bench" + i.to_bytes(4, "big"))
        frames.append(_frame(updf(phy, (1 << 48) + i * 1000)))
    sock = socket.create_connection(("127.0.0.1", http_port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /router/{station_eui(g)} HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"station handshake refused: {head[:80]!r}")
    sock.sendall(_frame(b'{"msgtype":"version","station":"bench","protocol":2}'))
    sock.setblocking(False)
    ready.release()
    go.wait()
    began = time.perf_counter()
    burst = max(1, int(rate * BURST_SECONDS))
    for start in range(0, len(frames), burst):
        pause = began + start / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        sock.setblocking(True)  # TCP: a daemon that cannot keep up slows the sender down
        sock.sendall(b"".join(frames[start:start + burst]))
        sock.setblocking(False)
        try:
            while sock.recv(1 << 16):  # router_config, pings: read and drop
                pass
        except BlockingIOError:
            pass
    elapsed = time.perf_counter() - began
    results.put({"gateway": g, "sent": count, "seconds": elapsed})
    # A clean close: the server answers our close frame only after every frame before it (closing
    # with unread data would reset the connection and drop what the daemon had not read yet).
    sock.setblocking(True)
    sock.sendall(bytes((0x88, 0x82)) + b"\0\0\0\0" + struct.pack(">H", 1000))
    sock.settimeout(60)
    try:
        while sock.recv(1 << 16):
            pass
    except OSError:
        pass
    sock.close()


def wait_until_idle(http_port: int, limit: float = 60.0) -> None:
    """Until the daemon accepts no more uplinks (a backlog of the last run would count in the next)."""
    deadline = time.monotonic() + limit
    last = -1
    while time.monotonic() < deadline:
        now = uplink_counter(http_port)
        if now == last:
            return
        last = now
        time.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateways", type=int, default=4, help="packet forwarders, and as many stations")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--offer", type=float, default=20000.0, help="uplinks/s offered by each kind of gateway")
    parser.add_argument("--rounds", type=int, default=1, help="UDP then Station, this many times")
    parser.add_argument("--per-push", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(f"{args.gateways} packet forwarders and {args.gateways} stations (one process each), {args.devices} ABP "
          f"devices, {args.offer:,.0f} uplinks/s offered, {args.seconds:g} s per run, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    per_run = int(args.offer / args.gateways * args.seconds) // (args.devices // args.gateways) + 1
    with tempfile.TemporaryDirectory() as tmp:
        daemon, key = start_daemon(Path(tmp), args.devices)
        ratios: list[float] = []
        cpu_ratios: list[float] = []
        try:
            fcnt = 0
            for n in range(args.rounds):
                wait_until_idle(daemon.http_port)
                udp = gatewayd_run(daemon, key, args, args.offer, fcnt)
                fcnt += per_run
                wait_until_idle(daemon.http_port)
                station = gatewayd_run(daemon, key, args, args.offer, fcnt, target=station_sender)
                fcnt += per_run
                for name, r in (("UDP    ", udp), ("Station", station)):
                    cpu = f", {r['cpu_us']:.0f} us CPU per uplink" if r["cpu_us"] else ""
                    print(f"round {n + 1} {name}: {r['rate']:,.0f} uplinks/s to the monitor ({r['comm_rx']:,} comm_rx "
                          f"of {r['sent']:,} sent, {r['accepted']:,} accepted){cpu}"
                          + (f"; monitor closed: {r['monitor_closed']}" if r["monitor_closed"] else ""))
                ratios.append(station["rate"] / udp["rate"] if udp["rate"] else 0)
                if udp["cpu_us"] and station["cpu_us"]:
                    cpu_ratios.append(udp["cpu_us"] / station["cpu_us"])
        finally:
            daemon.stop()
    middle = statistics.median(ratios)
    print(f"Station/UDP uplinks/s: {', '.join(f'{r:.2f}' for r in ratios)} (median {middle:.2f})   "
          f"target >= 0.80: {'met' if middle >= 0.8 else 'NOT met'}")
    if cpu_ratios:
        print(f"UDP/Station CPU per uplink (the load-independent form of the same ratio): "
              f"{', '.join(f'{r:.2f}' for r in cpu_ratios)} (median {statistics.median(cpu_ratios):.2f})")


if __name__ == "__main__":
    main()

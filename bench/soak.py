"""Soak: 10 minutes of mixed traffic; RSS, open files and journal size sampled every 10 s.

    .venv/bin/python bench/soak.py [--minutes 10] [--interval 10] [--warmup 2] [--devices 50]

gatewayd runs as a subprocess on 127.0.0.1 with small journal limits (256 KiB segments, a snapshot
every 2,000 records, 2 MiB of history), so retention works many times during the run. Traffic, all
at once: WebSocket devices sending acknowledged telemetry and pings (some reconnect every minute),
an HTTP terminal (sendlog, checklive), a WebSocket terminal, a LoRa packet forwarder with an ABP
device (uplinks, keep-alives), TX commands, monitoring clients (one steady, one that comes and goes)
and REST reads. Punches stay in the daemon's model for good (attendance has no retention), so
terminals punch at a busy entrance's pace rather than as fast as possible. The raw stack (bench/raw_server.py: hypercorn + quart-trio, nothing parsed or
stored) carries the same WebSocket device traffic in the same run.

Printed: every sample, then the slopes after the warm-up (least squares, per 10 minutes) of RSS and
open files for both servers, the RSS ratio, and the journal's size against what retention allows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wsload import ROOT, create_devices, raise_nofile, rss_kib, temp_dir, write_config  # noqa: E402

sys.path.insert(0, str(ROOT))
from tests.lorasim import SimDevice, SimGateway  # noqa: E402
from tests.reliability.crash_load import Spawner  # noqa: E402

SEGMENT_BYTES = 256 * 1024
HISTORY_BYTES = 2 * 1024 * 1024
ABP = {"dev_eui": "0004a30b001c5a01", "dev_addr": "26015a01", "nwk_s_key": "2b7e151628aed2a6abf7158809cf4f3c",
       "app_s_key": "3c4fcf098815f7aba6d2ae2816157e2b"}
GONE = (ConnectionClosed, HandshakeError, OSError, trio.TooSlowError, httpx.HTTPError, json.JSONDecodeError)


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def slope_per_10min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), scaled to a change per 10 minutes."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 600 if var else 0.0


class Traffic:
    def __init__(self, port: int, raw_port: int, udp_port: int, api_key: str, devices: list[dict],
                 raw_devices: list[dict]):
        self.port, self.raw_port, self.udp_port, self.key = port, raw_port, udp_port, api_key
        self.devices, self.raw_devices = devices, raw_devices
        self.sent = {"telemetry": 0, "acks": 0, "punches": 0, "uplinks": 0, "tx": 0, "frames": 0, "errors": 0}
        self.rng = random.Random(1)

    async def device(self, port: int, device: dict, reconnect_every: float | None, count: bool) -> None:
        n = 0
        while True:
            try:
                async with open_websocket_url(f"ws://127.0.0.1:{port}/ws", connect_timeout=10,
                                              disconnect_timeout=2) as ws:
                    await ws.send_message(json.dumps({"type": "register", "device_id": device["id"],
                                                      "token": device["token"]}))
                    await ws.get_message()
                    until = time.monotonic() + reconnect_every if reconnect_every else float("inf")
                    while time.monotonic() < until:
                        n += 1
                        await ws.send_message(json.dumps({"type": "telemetry", "id": str(n), "payload": {
                            "temperature": round(20 + self.rng.random() * 5, 2), "humidity": 48, "n": n}}))
                        with trio.fail_after(10):
                            while "ack" not in await ws.get_message():
                                pass
                        if count:
                            self.sent["telemetry"] += 1
                        if n % 5 == 0:
                            await ws.send_message('{"type":"ping"}')
                        await trio.sleep(1.0)  # one message a second: the device's own pace
            except GONE:
                self.sent["errors"] += count
                await trio.sleep(1.0)

    async def http_terminal(self) -> None:
        index = 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=10) as client:
            while True:
                try:
                    records = [{"enrollid": 1 + index % 50, "time": time.strftime("%Y-%m-%d %H:%M:%S",
                                                                                   time.gmtime(1.7e9 + index * 10)),
                                "mode": 1, "inout": index % 2, "event": 0}]
                    await client.post("/api/device-http", content=json.dumps(
                        {"cmd": "sendlog", "sn": "SOAK-HTTP", "count": 1, "logindex": index, "record": records}))
                    await client.post("/api/device-http", content=json.dumps({"cmd": "checklive", "sn": "SOAK-HTTP"}))
                    self.sent["punches"] += 1
                    index += 1
                except GONE:
                    self.sent["errors"] += 1
                await trio.sleep(10.0)  # a busy entrance: a punch every 10 s

    async def ws_terminal(self) -> None:
        index = 0
        while True:
            try:
                async with open_websocket_url(f"ws://127.0.0.1:{self.port}/", disconnect_timeout=2) as ws:
                    await ws.send_message(json.dumps({"cmd": "reg", "sn": "SOAK-WS", "cpusn": "c",
                                                      "devinfo": {"modelname": "m"}}))
                    while True:
                        index += 1
                        records = [{"enrollid": 9, "time": time.strftime("%Y-%m-%d %H:%M:%S",
                                                                          time.gmtime(1.6e9 + index)),
                                    "mode": 1, "inout": 0, "event": 0}]
                        await ws.send_message(json.dumps({"cmd": "sendlog", "sn": "SOAK-WS", "count": 1,
                                                          "logindex": index, "record": records}))
                        with trio.move_on_after(3):
                            while True:
                                msg = json.loads(await ws.get_message())
                                if "cmd" in msg and "ret" not in msg:  # a server command: answer empty
                                    await ws.send_message(json.dumps({"ret": msg["cmd"], "result": True,
                                                                      "count": 0, "record": []}))
                                elif msg.get("ret") == "sendlog":
                                    break
                        self.sent["punches"] += 1
                        await trio.sleep(15.0)
            except GONE:
                self.sent["errors"] += 1
                await trio.sleep(1.0)

    async def lora(self) -> None:
        gateway = SimGateway("aa555a0000005a01")
        device = SimDevice.abp(ABP["dev_addr"], ABP["nwk_s_key"], ABP["app_s_key"])
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await sock.bind(("127.0.0.1", 0))
        address = ("127.0.0.1", self.udp_port)
        tick = 0
        async with trio.open_nursery() as nursery:
            async def drain() -> None:
                while True:
                    await sock.recv(65536)

            nursery.start_soon(drain)
            while True:
                if tick % 10 == 0:
                    await sock.sendto(gateway.pull_data(), address)
                await sock.sendto(gateway.push_data(device.uplink(2, os.urandom(8))), address)
                self.sent["uplinks"] += 1
                tick += 1
                await trio.sleep(1.0)

    async def operator(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", headers=headers, timeout=10) as api:
            while True:
                try:
                    await api.get("/api/devices")
                    target = self.rng.choice(self.devices)
                    await api.post("/api/tx", content=json.dumps({"function": "TX", "DevEui": target["id"],
                                                                  "Payload": "0102", "Port": 1}))
                    self.sent["tx"] += 1
                except GONE:
                    self.sent["errors"] += 1
                await trio.sleep(5.0)

    async def monitor(self, churn: bool) -> None:
        headers = [(b"Authorization", f"Bearer {self.key}".encode())]
        while True:
            try:
                async with open_websocket_url(f"ws://127.0.0.1:{self.port}/monitor/communications",
                                              extra_headers=headers, disconnect_timeout=2) as ws:
                    with trio.move_on_after(30 if churn else float("inf")):
                        while True:
                            await ws.get_message()
                            self.sent["frames"] += 1
            except GONE:
                self.sent["errors"] += 1
            await trio.sleep(5.0 if churn else 1.0)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for i, device in enumerate(self.devices):
                nursery.start_soon(self.device, self.port, device, 60.0 if i % 10 == 0 else None, True)
            for i, device in enumerate(self.raw_devices):
                nursery.start_soon(self.device, self.raw_port, device, 60.0 if i % 10 == 0 else None, False)
            nursery.start_soon(self.http_terminal)
            nursery.start_soon(self.ws_terminal)
            nursery.start_soon(self.lora)
            nursery.start_soon(self.operator)
            nursery.start_soon(self.monitor, False)
            nursery.start_soon(self.monitor, True)


def start_raw(directory: Path) -> tuple[subprocess.Popen, int]:
    portfile = directory / "raw.json"
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "raw_server.py"), str(portfile)], cwd=ROOT)
    deadline = time.monotonic() + 30
    while not portfile.exists() or not portfile.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the raw server did not start")
        time.sleep(0.05)
    return proc, json.loads(portfile.read_text())["port"]


async def soak(args) -> int:
    raise_nofile(4096)
    with temp_dir("gatewayd-soak-") as tmp:
        base = Path(tmp)
        state = base / "state"
        keys: list[str] = []
        devices = await create_devices(state, args.devices, keys)
        with free_udp_port() as udp_port:
            pass
        config = write_config(base, {
            "server": {"udp_host": "127.0.0.1"},
            "terminals": {"auto_accept": True},
            "journal": {"segment_bytes": SEGMENT_BYTES, "snapshot_every": 2000, "history_max_bytes": HISTORY_BYTES,
                        "history_max_age_days": 0.01},
            "devices": {"telemetry_history": 100},
        })
        server = Spawner(state, ["--config", str(config), "--udp-port", str(udp_port)], base)
        server.spawn()
        info = server.wait_ready(60)
        server.port, server.pid = info["http_port"], server.proc.pid
        raw, raw_port = start_raw(base)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10,
                                     headers={"Authorization": f"Bearer {keys[0]}"}) as api:
            await api.post("/api/devices", json={"name": "soak-abp", "lorawan": ABP})
        traffic = Traffic(server.port, raw_port, info["udp_port"], keys[0], devices, devices)
        samples: list[dict] = []
        began = time.monotonic()
        print(f"soak: {args.minutes:g} min, sample every {args.interval:g} s, {args.devices} devices; "
              f"gatewayd pid {server.pid}, raw stack pid {raw.pid}")
        print(f"{'t (s)':>6} {'rss KiB':>9} {'fds':>5} {'raw rss':>9} {'raw fds':>7} {'journal KiB':>11} "
              f"{'files':>5} {'telemetry':>9} {'errors':>6}")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(traffic.run)
                while time.monotonic() - began < args.minutes * 60:
                    await trio.sleep(args.interval)  # the sampling period itself
                    journal = state / "journal"
                    segments = sum(p.stat().st_size for p in journal.glob("segment-*.jsonl"))
                    sample = {"t": time.monotonic() - began, "rss": rss_kib(server.pid), "fds": open_files(server.pid),
                              "raw_rss": rss_kib(raw.pid), "raw_fds": open_files(raw.pid),
                              "journal": directory_bytes(journal), "segments": segments,
                              "files": len(os.listdir(journal))}
                    samples.append(sample)
                    print(f"{sample['t']:>6.0f} {sample['rss']:>9,} {sample['fds']:>5} {sample['raw_rss']:>9,} "
                          f"{sample['raw_fds']:>7} {sample['journal'] // 1024:>11,} {sample['files']:>5} "
                          f"{traffic.sent['telemetry']:>9,} {traffic.sent['errors']:>6}", flush=True)
                nursery.cancel_scope.cancel()
        finally:
            server.terminate(15)
            raw.terminate()
            raw.wait(10)
    steady = [s for s in samples if s["t"] >= args.warmup * 60] or samples
    rss = slope_per_10min([(s["t"], s["rss"]) for s in steady])
    fds = slope_per_10min([(s["t"], s["fds"]) for s in steady])
    raw_rss = slope_per_10min([(s["t"], s["raw_rss"]) for s in steady])
    mean_rss = sum(s["rss"] for s in steady) / len(steady)
    mean_raw = sum(s["raw_rss"] for s in steady) / len(steady)
    biggest = max(s["segments"] for s in samples)
    # Retention runs at each snapshot: up to a snapshot's worth of records (2,000) and the open
    # segment may sit beyond the history budget in between.
    allowed = HISTORY_BYTES + 2 * SEGMENT_BYTES + 2000 * 1024
    print()
    print(f"after a {args.warmup:g} min warm-up ({len(steady)} samples):")
    print(f"  gatewayd RSS slope: {rss:+,.0f} KiB per 10 min ({rss / mean_rss:+.2%} of its mean {mean_rss:,.0f} KiB)")
    print(f"  raw stack RSS slope: {raw_rss:+,.0f} KiB per 10 min (mean {mean_raw:,.0f} KiB); "
          f"RSS ratio gatewayd/raw {mean_rss / mean_raw:.2f}")
    print(f"  gatewayd open files slope: {fds:+.1f} per 10 min (last {samples[-1]['fds']})")
    segments = slope_per_10min([(s["t"], s["segments"]) for s in steady])
    print(f"  journal segments: largest {biggest / 1024:,.0f} KiB, slope {segments / 1024:+,.0f} KiB per 10 min; "
          f"retention allows about {allowed / 1024:,.0f} KiB (history_max_bytes {HISTORY_BYTES // 1024} KiB, "
          f"plus the open segment and one snapshot interval); snapshots and the rest: "
          f"{(samples[-1]['journal'] - samples[-1]['segments']) / 1024:,.0f} KiB")
    print(f"  traffic: {traffic.sent}")
    flat = abs(rss) < 0.02 * mean_rss and abs(fds) < 5 and biggest <= allowed
    print("verdict:", "flat" if flat else "GROWING (see the slopes above)")
    return 0 if flat else 1


class free_udp_port:
    """A free UDP port number (bound, then released for the daemon to take)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--devices", type=int, default=50)
    args = parser.parse_args()
    sys.exit(trio.run(soak, args))


if __name__ == "__main__":
    main()

"""Dashboard: the devices page's render rate and the live-update latency (device -> browsers).

Two measurements, each against gatewayd (a subprocess on 127.0.0.1 with a fresh state directory)
and against the raw stack (hypercorn + quart-trio in a subprocess: the same page rendered from a
list in memory, the same bounded fan-out to dashboard sockets, no journal, no state, no sessions),
measured in the same run for the ratios:
  - page: 4 clients GET /devices (500 devices) as fast as they can for --seconds;
  - live: 10 dashboard sockets; 10 devices send telemetry (with an id: durable, acknowledged) at
    --rate msgs/s in all for --seconds; each socket times every event from the device's send
    (p50 / p99) and counts what it got.

Usage: python bench/dashboard_live.py [--seconds 3] [--rate 200] [--devices 500] [--sockets 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import trio  # noqa: E402
from trio_websocket import open_websocket_url  # noqa: E402

PASSWORD = "bench password 1"
PAGE_CLIENTS = 4
DRIVING_DEVICES = 10
RAW_QUEUE = 2000


# -- the raw stack ------------------------------------------------------------------------------------
RAW_PAGE = """<!doctype html><html><head><title>Devices</title></head><body><table>
{% for d in devices %}<tr data-device="{{ d.id }}"><td><a href="/devices/{{ d.id }}">{{ d.name }}</a></td>
<td>{{ d.status }}</td><td>{{ d.last_seen or 'never' }}</td><td>{{ d.kind }}</td>
<td>{% for t in d.tags %}<span>{{ t }}</span>{% endfor %}</td><td><code>{{ d.id }}</code></td></tr>{% endfor %}
</table></body></html>"""


def raw_server(portfile: str, count: int) -> None:
    import uuid

    from hypercorn.config import Config
    from hypercorn.trio import serve
    from quart import render_template_string, websocket
    from quart_trio import QuartTrio

    app = QuartTrio("raw-dashboard")
    devices = [{"id": str(uuid.uuid4()), "name": f"device-{i}", "status": "offline", "last_seen": None,
                "kind": "ws", "tags": ["bench"]} for i in range(count)]
    feeds: set = set()
    seq = 0

    @app.get("/devices")
    async def page():
        return await render_template_string(RAW_PAGE, devices=devices)

    @app.websocket("/ws")
    async def raw_device():
        nonlocal seq
        await websocket.accept()
        await websocket.receive()
        await websocket.send('{"type":"registered"}')
        while True:
            message = json.loads(await websocket.receive())
            seq += 1
            event = json.dumps({"seq": seq, "type": "telemetry", "category": "telemetry",
                                "payload": message.get("payload"), "text": "telemetry"})
            for channel in list(feeds):
                try:
                    channel.send_nowait(event)
                except trio.WouldBlock:
                    feeds.discard(channel)
                    channel.close()
            if "id" in message:
                await websocket.send(json.dumps({"type": "ack", "id": message["id"]}))

    @app.websocket("/dashboard/ws")
    async def feed():
        await websocket.accept()
        send, receive = trio.open_memory_channel(RAW_QUEUE)
        feeds.add(send)
        await websocket.send('{"kind":"hello","seq":0}')
        try:
            async for event in receive:
                await websocket.send(event)
            await websocket.close(1013, "too slow")
        finally:
            feeds.discard(send)

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve(app, config, task_status=task_status))
            Path(portfile).write_text(json.dumps({"http_port": port}))
            await trio.sleep_forever()

    trio.run(main)


# -- servers -------------------------------------------------------------------------------------------
def start(cmd: list[str], portfile: Path, env=None) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while not portfile.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start: {' '.join(cmd)}")
        time.sleep(0.05)
    return proc, json.loads(portfile.read_text())["http_port"]


def start_gatewayd(state: Path) -> tuple[subprocess.Popen, int]:
    base = [sys.executable, "-m", "gatewayd"]
    subprocess.run([*base, "admin", "set-password", "--password-stdin", "--state-dir", str(state)],
                   input=PASSWORD + "\n", text=True, cwd=ROOT, check=True, capture_output=True)
    return start([*base, "serve", "--state-dir", str(state), "--host", "127.0.0.1", "--port", "0",
                  "--udp-port", "0"], state / "run.json")


class Target:
    """What a load generator needs: base URL, cookies for the dashboard, devices to drive."""

    def __init__(self, name: str, port: int):
        self.name = name
        self.base = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}
        self.devices: list[dict] = []

    def ws_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"Origin", self.base.encode())]
        if self.cookies:
            headers.append((b"Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()).encode()))
        return headers


async def prepare_gatewayd(target: Target, devices: int) -> None:
    async with httpx.AsyncClient(base_url=target.base, timeout=30) as http:
        form = await http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        await http.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
        page = await http.get("/devices")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        for i in range(devices):
            response = await http.post("/api/devices", json={"name": f"device-{i}", "tags": ["bench"]},
                                       headers={"X-CSRF-Token": csrf})
            if i < DRIVING_DEVICES:
                target.devices.append(response.json())
        target.cookies = dict(http.cookies)


# -- measurements ------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def page_rate(target: Target, seconds: float) -> dict:
    timings: list[float] = []
    deadline = time.monotonic() + seconds

    async def client():
        async with httpx.AsyncClient(base_url=target.base, cookies=target.cookies, timeout=30) as http:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                response = await http.get("/devices")
                assert response.status_code == 200, response.status_code
                timings.append(time.perf_counter() - began)

    async with trio.open_nursery() as nursery:
        for _ in range(PAGE_CLIENTS):
            nursery.start_soon(client)
    return {"rps": len(timings) / seconds, "p50_ms": percentile(timings, 0.5) * 1000,
            "p99_ms": percentile(timings, 0.99) * 1000}


async def live_latency(target: Target, sockets: int, rate: float, seconds: float) -> dict:
    latencies: list[float] = []
    counts = [0] * sockets
    sent = 0
    ready = trio.Semaphore(0)
    stop = trio.Event()
    query = "/dashboard/ws?categories=telemetry"

    async def watch(index: int):
        async with open_websocket_url(target.ws + query, extra_headers=target.ws_headers()) as ws:
            first = json.loads(await ws.get_message())
            assert first.get("kind") == "hello", first
            ready.release()
            while True:
                with trio.move_on_after(2.0) as idle:
                    event = json.loads(await ws.get_message())
                if idle.cancelled_caught and stop.is_set():
                    return
                if idle.cancelled_caught:
                    continue
                payload = event.get("payload") or {}
                if "sent" in payload:
                    latencies.append(time.monotonic() - payload["sent"])
                    counts[index] += 1

    async def device(entry: dict, share: float):
        nonlocal sent
        async with open_websocket_url(target.ws + "/ws") as ws:
            await ws.send_message(json.dumps({"type": "register", "device_id": entry["id"],
                                              "token": entry.get("token", "raw")}))
            await ws.get_message()

            async def drain():  # acks: read so they never back up
                while True:
                    await ws.get_message()

            async with trio.open_nursery() as inner:
                inner.start_soon(drain)
                interval = 1.0 / share
                next_at = trio.current_time()
                end = next_at + seconds
                while trio.current_time() < end:
                    await ws.send_message(json.dumps({"type": "telemetry", "id": sent,
                                                      "payload": {"sent": time.monotonic(), "n": sent}}))
                    sent += 1
                    next_at += interval
                    await trio.sleep_until(next_at)
                inner.cancel_scope.cancel()

    async def devices():
        # Several devices share the rate, each below the per-device limit (devices.rate_per_second).
        async with trio.open_nursery() as group:
            for entry in target.devices:
                group.start_soon(device, entry, rate / len(target.devices))
        await trio.sleep(1.0)  # let the last events arrive
        stop.set()

    async with trio.open_nursery() as nursery:
        for i in range(sockets):
            nursery.start_soon(watch, i)
        for _ in range(sockets):
            with trio.fail_after(20):
                await ready.acquire()
        nursery.start_soon(devices)
    expected = sent * sockets
    return {"sent": sent, "delivered": sum(counts) / expected if expected else 0.0,
            "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}


async def run_all(args) -> None:
    with tempfile.TemporaryDirectory(prefix="gwbench-dash-") as tmp:
        tmp_path = Path(tmp)
        raw_proc, raw_port = start([sys.executable, __file__, "--raw", str(tmp_path / "raw.json"),
                                    "--devices", str(args.devices)], tmp_path / "raw.json")
        gw_proc, gw_port = start_gatewayd(tmp_path / "state")
        try:
            gatewayd, raw = Target("gatewayd", gw_port), Target("raw", raw_port)
            raw.devices = [{"id": f"raw-{i}"} for i in range(DRIVING_DEVICES)]
            await prepare_gatewayd(gatewayd, args.devices)
            results = {}
            for target in (raw, gatewayd):
                results[target.name] = {"page": await page_rate(target, args.seconds),
                                        "live": await live_latency(target, args.sockets, args.rate, args.seconds)}
        finally:
            for proc in (gw_proc, raw_proc):
                proc.terminate()
                proc.wait(10)
    gw, rw = results["gatewayd"], results["raw"]
    print(f"devices page ({args.devices} devices, {PAGE_CLIENTS} clients, {args.seconds:g} s)")
    for name, r in results.items():
        p = r["page"]
        print(f"  {name:9s} {p['rps']:8.1f} req/s   p50 {p['p50_ms']:7.2f} ms   p99 {p['p99_ms']:7.2f} ms")
    print(f"  ratio gatewayd/raw: {gw['page']['rps'] / rw['page']['rps']:.2f} of the raw request rate")
    print(f"live updates ({args.sockets} dashboard sockets, {args.rate:g} msgs/s for {args.seconds:g} s)")
    for name, r in results.items():
        lv = r["live"]
        print(f"  {name:9s} sent {lv['sent']:6d}   delivered {lv['delivered'] * 100:6.2f} %   "
              f"p50 {lv['p50_ms']:7.2f} ms   p99 {lv['p99_ms']:7.2f} ms")
    print(f"  ratio gatewayd/raw p99 latency: {gw['live']['p99_ms'] / rw['live']['p99_ms']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--sockets", type=int, default=10)
    parser.add_argument("--raw", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw:
        raw_server(args.raw, args.devices)
        return
    args.seconds = min(max(args.seconds, 0.5), 30.0)
    args.rate = min(max(args.rate, 1.0), 5000.0)
    args.sockets = min(max(args.sockets, 1), 200)
    args.devices = min(max(args.devices, 1), 10_000)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    trio.run(run_all, args)


if __name__ == "__main__":
    main()

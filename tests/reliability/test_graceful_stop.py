"""SIGTERM with 1,000 connected devices: every one is told 1001, nothing acknowledged is lost, and
the process is gone within 5 s. GATEWAYD_STOP_DEVICES changes the number of devices."""

from __future__ import annotations

import json
import os
import time

import pytest
import trio
from trio_websocket import ConnectionClosed

from gatewayd import ops
from gatewayd.journal.reader import JournalReader
from gatewayd.gateway import open_core
from tests.conftest import make_settings
from tests.reliability.clients import fleet_addresses, websocket_from
from tests.reliability.crash_load import Spawner
from tests.reliability.figures import count

DEVICES = int(os.environ.get("GATEWAYD_STOP_DEVICES", "1000"))


async def make_devices(state_dir, n: int) -> list[dict]:
    async with open_core(make_settings(state_dir), online=False) as core:
        return [await ops.call(core, "device.create", {"name": f"stop-{i}"}) for i in range(n)]


@pytest.mark.slow
async def test_sigterm_with_a_thousand_devices_closes_all_with_1001_within_5_s(tmp_path):
    state = tmp_path / "state"
    devices = await make_devices(state, DEVICES)
    logs = tmp_path / "logs"
    logs.mkdir()
    spawner = Spawner(state, ["--udp-port", "0"], logs)
    spawner.spawn()
    try:
        info = await trio.to_thread.run_sync(spawner.wait_ready)
        registered = trio.Semaphore(0)
        codes: list[int | None] = []
        acked: set[str] = set()
        # Connect in waves of 100 until registered (not 1,000 handshakes in one instant), from several
        # addresses as a real fleet does (the daemon limits what one address may do).
        limit = trio.CapacityLimiter(100)
        sources = fleet_addresses(len(devices))

        async def device(index: int, d: dict) -> None:
            await limit.acquire()
            held = [True]

            def registered_now() -> None:
                if held[0]:
                    held[0] = False
                    limit.release()

            try:
                async with websocket_from(sources[index % len(sources)], info["http_port"]) as ws:
                    await session(ws, d, registered_now)
            finally:
                registered_now()

        async def session(ws, d: dict, registered_now) -> None:
            await ws.send_message(json.dumps({"type": "register", "device_id": d["id"], "token": d["token"]}))
            assert json.loads(await ws.get_message())["type"] == "registered"
            registered_now()
            await ws.send_message(json.dumps({"type": "telemetry", "id": d["name"], "payload": {"v": 1}}))
            reply = json.loads(await ws.get_message())
            if reply == {"type": "ack", "id": d["name"]}:
                acked.add(d["name"])
            registered.release()
            try:
                while True:
                    await ws.get_message()
            except ConnectionClosed as exc:
                codes.append(exc.reason.code)

        async with trio.open_nursery() as nursery:
            for index, d in enumerate(devices):
                nursery.start_soon(device, index, d)
            with trio.fail_after(120):
                for _ in devices:
                    await registered.acquire()
            began = time.monotonic()
            spawner.proc.send_signal(15)
            status = await trio.to_thread.run_sync(spawner.proc.wait, 30)
            took = time.monotonic() - began
            with trio.fail_after(10):
                while len(codes) < len(devices):
                    await trio.sleep(0.05)
    finally:
        spawner.kill()
    count("graceful stop: devices connected", len(devices))
    count("graceful stop: exit time (ms)", int(took * 1000))
    assert status == 0, spawner.output()[-3000:]
    assert took < 5.0, f"took {took:.2f} s to exit"
    assert codes.count(1001) == len(devices), {c: codes.count(c) for c in set(codes)}
    assert len(acked) == len(devices)
    stored = {r.data.get("msg_id") for r in JournalReader(state / "journal").records() if r.type == "device.telemetry"}
    assert acked <= stored
    assert "Traceback" not in spawner.output()


async def test_sigterm_with_a_stalled_peer_still_exits_within_5_s(tmp_path):
    """A peer whose receive window is full blocks hypercorn's (shielded) send; the stop must not
    wait for the TCP timeout to free it."""
    import httpx

    from tests.reliability.rawws import RawWebSocket

    state = tmp_path / "state"
    device, = await make_devices(state, 1)
    logs = tmp_path / "logs"
    logs.mkdir()
    key = None
    async with open_core(make_settings(state), online=False) as core:
        key = (await ops.call(core, "apikey.create", {"name": "stop"}))["key"]
    spawner = Spawner(state, ["--udp-port", "0"], logs)
    spawner.spawn()
    try:
        info = await trio.to_thread.run_sync(spawner.wait_ready)
        stalled = await RawWebSocket.connect(info["http_port"], "/ws", rcvbuf=4096)
        await stalled.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
        assert json.loads(await stalled.receive())["type"] == "registered"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{info['http_port']}", timeout=10,
                                     headers={"Authorization": f"Bearer {key}"}) as api:
            for i in range(100):  # megabytes it will never read: the server's send blocks
                await api.post(f"/api/devices/{device['id']}/commands",
                               json={"command": "load", "payload": {"blob": "x" * 30000, "i": i}})
        began = time.monotonic()
        spawner.proc.send_signal(15)
        status = await trio.to_thread.run_sync(spawner.proc.wait, 60)
        took = time.monotonic() - began
        stalled.close()
    finally:
        spawner.kill()
    count("graceful stop with a stalled peer: exit time (ms)", int(took * 1000))
    assert status == 0 and took < 5.0, f"exit status {status} after {took:.1f} s:\n{spawner.output()[-2000:]}"

"""A reconnect storm: every device connected, the daemon restarts, and all of them come back at the
same instant, with no back-off. All get registered again, the daemon answers HTTP while it
happens, and the journal stays sound. GATEWAYD_STORM_DEVICES=10000 for the full-size storm (CI runs
1,000)."""

from __future__ import annotations

import json
import os
import socket
import time

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from gatewayd import ops
from gatewayd.journal.reader import JournalReader
from gatewayd.gateway import open_core
from tests.conftest import make_settings
from tests.reliability.clients import fleet_addresses, websocket_from
from tests.reliability.crash_load import Endpoint, Spawner
from tests.reliability.figures import count

DEVICES = int(os.environ.get("GATEWAYD_STORM_DEVICES", "1000"))
# A fleet reaches the daemon from many addresses; per-address admission limits (tested on their own)
# are not what this test is about. 1,000 devices over 16 addresses: 63 each, under every such limit.
SOURCES = fleet_addresses(DEVICES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def make_devices(state_dir, n: int) -> list[dict]:
    devices: list[dict] = []
    async with open_core(make_settings(state_dir), online=False) as core:
        async def one(i: int) -> None:
            devices.append(await ops.call(core, "device.create", {"name": f"storm-{i}"}))

        async with trio.open_nursery() as nursery:  # concurrent: one fsync covers many (group commit)
            for i in range(n):
                nursery.start_soon(one, i)
    return devices


@pytest.mark.slow
async def test_every_device_reconnecting_at_once_gets_back_in(tmp_path):
    state = tmp_path / "state"
    devices = await make_devices(state, DEVICES)
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    spawner = Spawner(state, ["--udp-port", "0", "--port", str(port)], logs)
    ep = Endpoint()
    registrations = {"count": 0}
    phase_done = {1: trio.Event(), 2: trio.Event()}
    counts = {1: 0, 2: 0}
    failures: list[str] = []

    gentle = trio.Semaphore(200)  # the first connections come in waves; the storm does not

    async def device(index: int, d: dict) -> None:
        source = SOURCES[index % len(SOURCES)]
        for phase in (1, 2):
            await ep.wait_up()
            while True:
                held = phase == 1
                if held:
                    await gentle.acquire()
                try:
                    async with websocket_from(source, port) as ws:
                        await ws.send_message(json.dumps({"type": "register", "device_id": d["id"],
                                                          "token": d["token"]}))
                        reply = json.loads(await ws.get_message())
                        if held:
                            gentle.release()
                            held = False
                        if reply.get("type") != "registered":
                            failures.append(str(reply))
                            return
                        counts[phase] += 1
                        if counts[phase] == len(devices):
                            phase_done[phase].set()
                        try:
                            while True:
                                await ws.get_message()
                        except ConnectionClosed:
                            break  # the restart: reconnect at once, like every other device
                except (HandshakeError, OSError, ConnectionClosed):
                    await trio.sleep(0)  # no back-off at all: the worst case
                    await ep.wait_up()
                finally:
                    if held:
                        gentle.release()
            if phase == 2:
                return

    try:
        spawner.spawn()
        await trio.to_thread.run_sync(spawner.wait_ready, 60)
        ep.up(port, None)
        async with trio.open_nursery() as nursery:
            for index, d in enumerate(devices):
                nursery.start_soon(device, index, d)
            with trio.fail_after(300):
                await phase_done[1].wait()
            ep.down()
            spawner.terminate(30)
            spawner.spawn()
            await trio.to_thread.run_sync(spawner.wait_ready, 60)
            worst = 0.0
            answered_mid_storm = 0  # /healthz answers that came back while devices were still missing
            # The client's timeout only guards against a hang; how long an answer took is a figure.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                # An operator's connection open before the storm: its requests wait on the daemon, not
                # behind a thousand connections in the listen backlog.
                assert (await client.get("/healthz")).status_code == 200
                storm_began = time.monotonic()
                ep.up(port, None)
                with trio.fail_after(600):
                    while not phase_done[2].is_set():
                        began = time.monotonic()
                        assert (await client.get("/healthz")).status_code == 200
                        worst = max(worst, time.monotonic() - began)
                        if not phase_done[2].is_set():
                            answered_mid_storm += 1
                        with trio.move_on_after(0.2):
                            await phase_done[2].wait()
            took = time.monotonic() - storm_began
            nursery.cancel_scope.cancel()
        status = spawner.terminate(30)
    finally:
        spawner.kill()
    count(f"reconnect storm: devices back in ({DEVICES})", counts[2])
    count("reconnect storm: seconds until all were back (ms)", int(took * 1000))
    count("reconnect storm: worst /healthz latency during it (ms)", int(worst * 1000))
    assert not failures, failures[:5]
    assert status == 0
    # Responsive while the storm lasts: HTTP was answered before the last device was back in (an
    # order of events, not a time limit).
    assert answered_mid_storm >= 1, f"/healthz was first answered after every device was back ({worst:.1f} s)"
    assert JournalReader(state / "journal").verify().ok
    assert "Traceback" not in spawner.output()

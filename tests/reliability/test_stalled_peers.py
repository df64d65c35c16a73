"""Peers that stop reading (their TCP window fills), and peers that go silent: the daemon cuts
them within the configured times, keeps its memory bounded, and other clients keep their pace."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.conftest import wait_for
from tests.reliability.clients import create_device, register, telemetry
from tests.reliability.rawws import RawWebSocket

USER_TIMEOUT = 2.0
WS_TIMEOUT = 2.0


@pytest.fixture
def daemon_sections():
    return {"server": {"tcp_user_timeout": USER_TIMEOUT},
            "presence": {"ws_timeout": WS_TIMEOUT, "sweep_interval": 0.2},
            "devices": {"send_queue": 8, "rate_per_second": 100000, "rate_burst": 100000},
            "monitor": {"queue_size": 500}}


async def healthy_acks(daemon, device: dict, seconds: float) -> int:
    """Acknowledged telemetry a well-behaved device gets through in `seconds`."""
    acked = 0
    async with open_websocket_url(daemon.ws_url + "/ws") as ws:
        assert (await register(ws, device))["type"] == "registered"
        deadline = trio.current_time() + seconds
        while trio.current_time() < deadline:
            reply = await telemetry(ws, f"h{acked}", timeout=5)
            assert reply["type"] == "ack", reply
            acked += 1
    return acked


async def raw_device(daemon, device: dict) -> RawWebSocket:
    ws = await RawWebSocket.connect(daemon.port, "/ws", rcvbuf=4096)
    await ws.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
    assert json.loads(await ws.receive())["type"] == "registered"
    return ws


async def test_a_device_that_stops_reading_is_cut_and_others_keep_their_pace(daemon):
    stalled_device = await create_device(daemon.base_url, daemon.auth, "stalled")
    healthy_device = await create_device(daemon.base_url, daemon.auth, "healthy")
    baseline = await healthy_acks(daemon, healthy_device, 1.0)
    stalled = await raw_device(daemon, stalled_device)
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth, timeout=10) as api:
        for i in range(150):  # ~3 MB of commands it will never read
            response = await api.post(f"/api/devices/{stalled_device['id']}/commands",
                                      json={"command": "load", "payload": {"blob": "x" * 20000, "i": i}})
            assert response.status_code == 201
    started = time.monotonic()
    during = await healthy_acks(daemon, healthy_device, 1.0)
    assert during >= baseline * 0.3, f"a stalled peer slowed others down: {during} acks/s vs {baseline}"
    # Cut: the outbox is bounded (devices.send_queue) and the socket is aborted once the peer's zero
    # window outlasts server.tcp_user_timeout (plus the writer's own send timeout).
    await wait_for(lambda: not daemon.core.state.devices.get(stalled_device["id"])["online"], timeout=20)
    took = time.monotonic() - started
    await wait_for(lambda: all(getattr(c, "remote", None) != "127.0.0.1" or getattr(c, "device_id", None)
                               for c in list(daemon.core.connections._live)), timeout=5)
    stalled.close()
    print(f"stalled device cut after {took:.1f} s")
    assert took < 15


async def test_a_monitor_that_stops_reading_is_dropped_and_others_keep_receiving(daemon, nursery):
    device = await create_device(daemon.base_url, daemon.auth, "busy")
    auth = [("Authorization", f"Bearer {daemon.api_key}")]
    monitor = daemon.core.service("monitor")
    sessions = lambda: sum(len(b.sessions) for b in monitor.broadcasts.values())  # noqa: E731
    stalled = await RawWebSocket.connect(daemon.port, "/monitor/communications", headers=auth, rcvbuf=4096)
    await wait_for(lambda: sessions() == 1)
    received = []

    async def healthy_monitor(task_status=trio.TASK_STATUS_IGNORED):
        async with open_websocket_url(daemon.ws_url + "/monitor/communications",
                                      extra_headers=[(k.encode(), v.encode()) for k, v in auth]) as ws:
            task_status.started()
            while True:
                received.append(json.loads(await ws.get_message()))

    await nursery.start(healthy_monitor)
    async with open_websocket_url(daemon.ws_url + "/ws") as ws:
        assert (await register(ws, device))["type"] == "registered"
        for n in range(4000):  # ~9 MB of communications, none of which the stalled monitor reads
            await ws.send_message(json.dumps({"type": "telemetry", "payload": {"n": n, "pad": "p" * 1000}}))
            if n % 100 == 99:
                # Paced so that a monitor that does read is never far behind (whatever this machine's
                # speed): the stalled one alone falls behind without bound.
                assert (await telemetry(ws, f"sync{n}", timeout=15))["type"] == "ack"
                await wait_for(lambda: len(received) >= n - 200, timeout=15)
        assert (await telemetry(ws, "last", timeout=15))["type"] == "ack"
    started = time.monotonic()
    await wait_for(lambda: any(f.get("Extra", {}).get("type") == "telemetry" and "last" in json.dumps(f)
                               for f in received[-50:]) or len(received) >= 4000, timeout=15)
    # Cut either way: its queue overflowed (1013), or its zero window outlasted tcp_user_timeout.
    await wait_for(lambda: sessions() == 1, timeout=15)  # only the healthy one is left
    code = await stalled.wait_closed(timeout=USER_TIMEOUT * 5)
    assert code in (1013, 1006, None), code
    print(f"stalled monitor cut after {time.monotonic() - started:.1f} s (code {code})")
    stalled.close()


async def test_a_device_that_goes_silent_is_cut_after_the_heartbeat_timeout(daemon):
    device = await create_device(daemon.base_url, daemon.auth, "silent")
    silent = await raw_device(daemon, device)
    started = time.monotonic()
    await wait_for(lambda: not daemon.core.state.devices.get(device["id"])["online"], timeout=WS_TIMEOUT * 4)
    assert time.monotonic() - started >= WS_TIMEOUT * 0.8
    assert await silent.wait_closed() == 4009
    silent.close()

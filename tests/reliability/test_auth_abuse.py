"""Brute force is limited per source and recorded as actions; a device speaks only for itself."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from gatewayd.journal.reader import JournalReader
from tests.conftest import wait_for
from tests.reliability.clients import create_device, punches, receive, register, send
from tests.reliability.rawws import RawWebSocket

LIMIT = 3


@pytest.fixture
def daemon_sections():
    return {"security": {"login_failures_per_minute": LIMIT}, "terminals": {"auto_accept": True}}


def failures(daemon, kind: str) -> list[dict]:
    return [r.data for r in JournalReader(daemon.state_dir / "journal").records()
            if r.type == "auth.failed" and r.data["kind"] == kind]


async def collect_actions(daemon, frames: list, *, task_status=trio.TASK_STATUS_IGNORED):
    headers = [(b"Authorization", f"Bearer {daemon.api_key}".encode())]
    async with open_websocket_url(daemon.ws_url + "/monitor/actions", extra_headers=headers) as ws:
        task_status.started()
        while True:
            frames.append(json.loads(await ws.get_message()))


async def raw_register(daemon, device: dict, token: str, source: str) -> tuple[dict, int | None]:
    ws = await RawWebSocket.connect(daemon.port, "/ws", source=source)
    try:
        await ws.send(json.dumps({"type": "register", "device_id": device["id"], "token": token}))
        reply = json.loads(await ws.receive())
        code = None if reply.get("type") == "registered" else await ws.wait_closed()
        return reply, code
    finally:
        ws.close()


async def test_wrong_device_tokens_are_limited_per_source_and_become_actions(daemon, nursery):
    actions: list[dict] = []
    await nursery.start(collect_actions, daemon, actions)
    device = await create_device(daemon.base_url, daemon.auth)
    for _ in range(LIMIT):
        reply, code = await raw_register(daemon, device, "tok_" + "A" * 43, "127.0.0.5")
        assert reply["code"] == "auth_failed" and code == 4001
    # The right token from the same source is now refused too; another source is not affected.
    reply, code = await raw_register(daemon, device, device["token"], "127.0.0.5")
    assert reply["type"] == "error" and "too many" in reply["message"] and code == 4001
    reply, _ = await raw_register(daemon, device, device["token"], "127.0.0.6")
    assert reply["type"] == "registered"
    recorded = await wait_for(lambda: len(failures(daemon, "device_token")) >= LIMIT  # written within 100 ms
                              and failures(daemon, "device_token"))
    assert len(recorded) >= LIMIT and all(r["source"] == "127.0.0.5" for r in recorded)
    await wait_for(lambda: sum(a.get("ActionType") == "auth_failed" for a in actions) >= LIMIT)


async def test_wrong_api_keys_are_limited_per_source_and_become_actions(daemon, nursery):
    actions: list[dict] = []
    await nursery.start(collect_actions, daemon, actions)
    five = httpx.AsyncHTTPTransport(local_address="127.0.0.5")
    six = httpx.AsyncHTTPTransport(local_address="127.0.0.6")
    async with httpx.AsyncClient(base_url=daemon.base_url, transport=five) as client, \
            httpx.AsyncClient(base_url=daemon.base_url, transport=six) as other:
        for i in range(LIMIT):
            bad = await client.get("/api/devices", headers={"Authorization": f"Bearer gwk_0000000{i}_wrong"})
            assert bad.status_code == 401
        blocked = await client.get("/api/devices", headers=daemon.auth)
        assert blocked.status_code == 429
        assert (await other.get("/api/devices", headers=daemon.auth)).status_code == 200
    recorded = await wait_for(lambda: len(failures(daemon, "apikey")) >= LIMIT and failures(daemon, "apikey"))
    assert len(recorded) == LIMIT and {r["source"] for r in recorded} == {"127.0.0.5"}
    await wait_for(lambda: sum(a.get("ActionType") == "auth_failed" for a in actions) >= LIMIT)


async def test_wrong_admin_passwords_are_limited_per_source(daemon):
    import re

    from gatewayd import ops

    await ops.call(daemon.core, "admin.set_password", {"password": "right-password-1"})
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.5")
    async with httpx.AsyncClient(base_url=daemon.base_url, transport=transport) as browser:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', (await browser.get("/login")).text).group(1)
        for _ in range(LIMIT):
            bad = await browser.post("/login", data={"username": "admin", "password": "wrong-password",
                                                     "csrf_token": csrf})
            assert bad.status_code == 401
        right = await browser.post("/login", data={"username": "admin", "password": "right-password-1",
                                                   "csrf_token": csrf})
        assert right.status_code == 429
    await wait_for(lambda: len(failures(daemon, "login")) == LIMIT)


async def test_a_registered_connection_cannot_speak_for_another_device(daemon):
    mine = await create_device(daemon.base_url, daemon.auth, "mine")
    other = await create_device(daemon.base_url, daemon.auth, "other")
    async with open_websocket_url(daemon.ws_url + "/ws") as ws:
        assert (await register(ws, mine))["type"] == "registered"
        await send(ws, {"type": "register", "device_id": other["id"], "token": other["token"]})
        assert (await receive(ws))["type"] == "error"
        await send(ws, {"type": "telemetry", "id": "x1", "device_id": other["id"], "payload": {"v": 1}})
        reply = await receive(ws)
        assert reply in ({"type": "ack", "id": "x1"}, ) or reply["type"] == "error"
        await send(ws, {"type": "command_result", "id": "not-mine", "ok": True})
        assert (await receive(ws))["type"] == "error"
    stored = [r.data for r in JournalReader(daemon.state_dir / "journal").records() if r.type == "device.telemetry"]
    assert stored and all(r["device_id"] == mine["id"] for r in stored)
    assert daemon.core.state.devices.get(other["id"])["online"] is False


async def test_a_terminal_connection_cannot_post_for_another_serial_number(daemon):
    day = datetime(2026, 6, 12, 9, 0)
    async with open_websocket_url(daemon.ws_url + "/ws") as ws:
        await ws.send_message(json.dumps({"cmd": "reg", "sn": "SN-MINE", "cpusn": "c", "devinfo": {"modelname": "m"}}))
        assert json.loads(await ws.get_message())["result"] is True
        await ws.send_message(json.dumps({"cmd": "sendlog", "sn": "SN-OTHER", "count": 2, "logindex": 1,
                                          "record": punches(2, day)}))
        with trio.fail_after(5):
            while True:
                reply = json.loads(await ws.get_message())
                if reply.get("ret") == "sendlog":
                    break
        assert reply["result"] is False and "SN-MINE" in reply["reason"]
        await ws.send_message(json.dumps({"cmd": "reg", "sn": "SN-OTHER", "cpusn": "c"}))
        with trio.fail_after(5):
            while True:
                reply = json.loads(await ws.get_message())
                if reply.get("ret") == "reg":
                    break
        assert reply["result"] is False
    await daemon.core.history.wait_applied()
    assert not list(daemon.core.service("attendance").select(sn="SN-OTHER"))

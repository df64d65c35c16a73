"""Durable commands: queued while offline, delivered in order on registration (also after a daemon
restart), never after expiry, settled by the device's command_result."""

import pytest
import trio

from gatewayd.journal.record import utc_now_iso

from tests.conftest import run_cli, wait_for

from .helpers import api, create_device, open_websocket_url, receive_json, register, send_json, ws_url


async def queue(daemon, device, command, payload=None, **extra):
    response = await api(daemon, "POST", f"/api/devices/{device['id']}/commands",
                         json={"command": command, "payload": payload or {}, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def commands_of(daemon, device) -> list[dict]:
    return (await api(daemon, "GET", f"/api/devices/{device['id']}/commands")).json()["items"]


async def test_queued_commands_are_delivered_in_order_after_reconnect(daemon):
    device = await create_device(daemon)
    first = await queue(daemon, device, "reboot", {"delay": 5})
    second = await queue(daemon, device, "set_interval", {"seconds": 30})
    assert first["state"] == "queued" and first["id"] != second["id"]
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        got = [await receive_json(ws), await receive_json(ws)]
        assert got == [{"type": "command", "id": first["id"], "command": "reboot", "payload": {"delay": 5}},
                       {"type": "command", "id": second["id"], "command": "set_interval", "payload": {"seconds": 30}}]
        await send_json(ws, {"type": "command_result", "id": first["id"], "ok": True, "result": {"up": 1}})
        await send_json(ws, {"type": "command_result", "id": second["id"], "ok": False, "error": "busy"})
        await send_json(ws, {"type": "command_result", "id": "cmd_unknown", "ok": True})
        assert (await receive_json(ws))["code"] == "invalid"
        third = await queue(daemon, device, "blink")  # while online: sent at once
        assert (await receive_json(ws))["id"] == third["id"]
    states = {c["id"]: c for c in await commands_of(daemon, device)}
    assert states[first["id"]]["state"] == "acknowledged" and states[first["id"]]["result"] == {"up": 1}
    assert states[second["id"]]["state"] == "failed" and states[second["id"]]["error"] == "busy"
    assert states[third["id"]]["state"] == "sent"
    for stamp in ("queued", "sent", "acknowledged"):
        assert states[first["id"]][stamp]


async def test_queued_commands_survive_a_daemon_restart(daemon):
    device = await create_device(daemon)
    command = await queue(daemon, device, "reboot")
    await daemon.restart()
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert (await receive_json(ws))["id"] == command["id"]
    await wait_for(lambda: daemon.core.state.commands.get(command["id"])["state"] == "sent")
    await daemon.restart()
    assert daemon.core.state.commands.get(command["id"])["state"] == "sent"
    async with open_websocket_url(ws_url(daemon)) as ws:  # a sent command is not sent again
        await register(ws, device)
        await send_json(ws, {"type": "ping"})
        assert (await receive_json(ws))["type"] == "pong"


async def test_expired_commands_are_never_sent(daemon):
    device = await create_device(daemon)
    stale = await queue(daemon, device, "reboot", expires_in=0.2)
    fresh = await queue(daemon, device, "blink")
    await wait_for(lambda: daemon.core.state.commands.get(stale["id"])["state"] == "expired", timeout=5)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert (await receive_json(ws))["id"] == fresh["id"]
    listed = {c["id"]: c for c in await commands_of(daemon, device)}
    assert listed[stale["id"]]["state"] == "expired" and listed[stale["id"]]["sent"] is None
    assert listed[stale["id"]]["expired"]


@pytest.mark.parametrize("daemon_sections", [{"presence": {"sweep_interval": 60}}])
async def test_expiry_checked_again_at_delivery(daemon):
    device = await create_device(daemon)
    command = await queue(daemon, device, "reboot", expires_in=0.05)
    # the sweeper is far away: the session itself must refuse to send it
    await wait_for(lambda: utc_now_iso() > command["expires_at"])
    assert daemon.core.state.commands.get(command["id"])["state"] == "queued"
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await send_json(ws, {"type": "ping"})
        assert (await receive_json(ws))["type"] == "pong"
    assert daemon.core.state.commands.get(command["id"])["state"] == "expired"


async def test_xml_devices_get_commands_as_xml(daemon):
    device = await create_device(daemon)
    command = await queue(daemon, device, "reboot", {"delay": 5})
    async with open_websocket_url(ws_url(daemon), subprotocols=["gatewayd.xml"]) as ws:
        await ws.send_message(f'<register device_id="{device["id"]}" token="{device["token"]}"/>')
        with trio.fail_after(5):
            assert (await ws.get_message()).startswith("<registered")
            assert await ws.get_message() == f'<command id="{command["id"]}" name="reboot"><delay>5</delay></command>'
        await ws.send_message(f'<command_result id="{command["id"]}" ok="true"/>')
        await wait_for(lambda: daemon.core.state.commands.get(command["id"])["state"] == "acknowledged")


async def test_command_validation(daemon):
    device = await create_device(daemon)
    path = f"/api/devices/{device['id']}/commands"
    for body in ({"command": "bad name!"}, {"command": "x", "payload": [1]}, {"command": "x", "expires_in": -1},
                 {"payload": {}}, {"command": "x", "extra": 1}):
        response = await api(daemon, "POST", path, json=body)
        assert response.status_code == 422, body
        assert set(response.json()) == {"code", "message"}
    assert (await api(daemon, "POST", "/api/devices/nope/commands", json={"command": "x"})).status_code == 404


async def test_cli_send_and_list(daemon):
    device = await create_device(daemon)
    state_dir = str(daemon.state_dir)
    sent = await trio.to_thread.run_sync(run_cli, "device", "send", device["id"], "reboot", "--payload",
                                         '{"delay": 3}', "--state-dir", state_dir)
    assert sent.returncode == 0, sent.stderr
    assert "queued" in sent.stdout
    listed = await trio.to_thread.run_sync(run_cli, "device", "commands", device["id"], "--state-dir", state_dir)
    assert "reboot" in listed.stdout and "queued" in listed.stdout
    bad = await trio.to_thread.run_sync(run_cli, "device", "send", device["id"], "reboot", "--payload", "{",
                                        "--state-dir", state_dir)
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr


async def test_unanswered_commands_are_sent_again_to_devices_that_answer(daemon):
    device = await create_device(daemon)
    first = await queue(daemon, device, "calibrate")
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert (await receive_json(ws))["id"] == first["id"]
        await send_json(ws, {"type": "command_result", "id": first["id"], "ok": True})
        await wait_for(lambda: daemon.core.state.commands.get(first["id"])["state"] == "acknowledged")
        second = await queue(daemon, device, "reboot")
        assert (await receive_json(ws))["id"] == second["id"]
        # the connection ends before the device answers: it may never have read the command
    await daemon.restart()
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert (await receive_json(ws))["id"] == second["id"]  # sent again, once per connection
        await send_json(ws, {"type": "command_result", "id": second["id"], "ok": True})
        await wait_for(lambda: daemon.core.state.commands.get(second["id"])["state"] == "acknowledged")
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await send_json(ws, {"type": "ping"})
        assert (await receive_json(ws))["type"] == "pong"  # nothing is pending any more

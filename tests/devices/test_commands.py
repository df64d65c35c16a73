"""Durable commands: queued while offline, delivered in order on registration (also after a daemon
restart), never after expiry, settled by the device's command_result; sent again (same id) on the
next connection while unanswered, up to `devices.command_attempts`, then failed."""

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


async def listed(daemon, device, command) -> dict:
    response = await api(daemon, "GET", f"/api/devices/{device['id']}/commands/{command['id']}")
    assert response.status_code == 200, response.text
    return response.json()


async def next_command(ws) -> dict:
    while (msg := await receive_json(ws))["type"] != "command":
        pass
    return msg


async def nothing_else_due(daemon, device, ws) -> None:
    """Commands go out in queue order: when a command queued now is the next one the device gets,
    no older command was due on this connection."""
    marker = await queue(daemon, device, "marker")
    assert (await next_command(ws))["id"] == marker["id"]


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


async def test_an_unanswered_command_is_sent_again_after_a_restart_until_acknowledged(daemon):
    device = await create_device(daemon)
    command = await queue(daemon, device, "reboot")
    assert (command["attempts"], command["max_attempts"]) == (0, 3)
    await daemon.restart()
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert (await next_command(ws))["id"] == command["id"]
    # the connection ended before the device answered: it may never have read the command
    await daemon.restart()
    assert (await listed(daemon, device, command))["state"] == "sent"
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        again = await next_command(ws)
        assert again == {"type": "command", "id": command["id"], "command": "reboot", "payload": {}}
        assert (await listed(daemon, device, command))["attempts"] == 2
        await send_json(ws, {"type": "command_result", "id": command["id"], "ok": True})
        await wait_for(lambda: daemon.core.state.commands.get(command["id"])["state"] == "acknowledged")
    await daemon.restart()
    async with open_websocket_url(ws_url(daemon)) as ws:  # acknowledged: never sent again
        await register(ws, device)
        await nothing_else_due(daemon, device, ws)
    settled = await listed(daemon, device, command)
    assert (settled["state"], settled["attempts"]) == ("acknowledged", 2)


# The sweeper is far away: only the first sweep of the restarted daemon can fail the command.
@pytest.mark.parametrize("daemon_sections", [{"devices": {"command_attempts": 2}, "presence": {"sweep_interval": 60}}])
async def test_a_command_never_answered_fails_after_its_attempts_also_across_a_restart(daemon):
    device = await create_device(daemon)
    command = await queue(daemon, device, "reboot")
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert (await next_command(ws))["id"] == command["id"]
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert (await next_command(ws))["id"] == command["id"]
        await wait_for(lambda: daemon.core.state.commands.get(command["id"])["attempts"] == 2)
        await daemon.restart()  # the last attempt's session ends with the daemon
    await wait_for(lambda: daemon.core.state.commands.get(command["id"])["state"] == "failed")
    failed = await listed(daemon, device, command)
    assert (failed["attempts"], failed["max_attempts"]) == (2, 2)
    assert failed["error"] == "no answer from the device after 2 delivery attempts"
    assert (await commands_of(daemon, device))[0]["attempts"] == 2
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await nothing_else_due(daemon, device, ws)
        await send_json(ws, {"type": "command_result", "id": command["id"], "ok": True})  # too late: ignored
        await send_json(ws, {"type": "ping"})
        while (await receive_json(ws))["type"] != "pong":
            pass
    assert (await listed(daemon, device, command))["state"] == "failed"


async def test_the_attempts_limit_is_fixed_when_a_command_is_queued(daemon):
    device = await create_device(daemon)
    before = await queue(daemon, device, "reboot")
    daemon.core.settings.devices.command_attempts = 1  # as a reload would
    after = await queue(daemon, device, "blink")
    assert (before["max_attempts"], after["max_attempts"]) == (3, 1)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert [(await next_command(ws))["id"], (await next_command(ws))["id"]] == [before["id"], after["id"]]
    await wait_for(lambda: daemon.core.state.commands.get(after["id"])["state"] == "failed")
    assert daemon.core.state.commands.get(before["id"])["state"] == "sent"


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
        await wait_for(lambda: daemon.core.state.commands.get(command["id"])["state"] == "expired")
    assert daemon.core.state.commands.get(command["id"])["sent"] is None


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


async def test_unanswered_commands_are_sent_again_in_queue_order_with_their_ids(daemon):
    device = await create_device(daemon)
    first = await queue(daemon, device, "calibrate")
    second = await queue(daemon, device, "reboot")
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert [(await next_command(ws))["id"], (await next_command(ws))["id"]] == [first["id"], second["id"]]
    third = await queue(daemon, device, "blink")
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        got = [(await next_command(ws))["id"] for _ in range(3)]
        assert got == [first["id"], second["id"], third["id"]]
        for command_id in got:
            await send_json(ws, {"type": "command_result", "id": command_id, "ok": True})
        await wait_for(lambda: all(daemon.core.state.commands.get(c)["state"] == "acknowledged" for c in got))
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await nothing_else_due(daemon, device, ws)
    assert [c["attempts"] for c in await commands_of(daemon, device)][:3] == [2, 2, 1]


async def test_a_new_connection_takes_over_a_command_sent_on_the_one_it_replaces(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as old:
        await register(old, device)
        command = await queue(daemon, device, "reboot")
        assert (await next_command(old))["id"] == command["id"]
        async with open_websocket_url(ws_url(daemon)) as new:  # the device came back before the old one died
            await register(new, device)
            assert (await next_command(new))["id"] == command["id"]
            await send_json(new, {"type": "command_result", "id": command["id"], "ok": True})
            await wait_for(lambda: daemon.core.state.commands.get(command["id"])["state"] == "acknowledged")
    assert (await listed(daemon, device, command))["attempts"] == 2


@pytest.mark.parametrize("daemon_sections", [{}, {"presence": {"sweep_interval": 60}}],
                         ids=["by-the-sweeper", "at-redelivery"])
async def test_an_unanswered_command_whose_expiry_passed_is_not_sent_again(daemon, daemon_sections):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        command = await queue(daemon, device, "reboot", expires_in=1.0)
        assert (await next_command(ws))["id"] == command["id"]
    await wait_for(lambda: utc_now_iso() > command["expires_at"])
    if daemon_sections:  # the sweeper is far away: the next session itself must refuse to send it
        assert daemon.core.state.commands.get(command["id"])["state"] == "sent"
    else:
        await wait_for(lambda: daemon.core.state.commands.get(command["id"])["state"] == "expired")
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await nothing_else_due(daemon, device, ws)
    expired = await listed(daemon, device, command)
    assert expired["state"] == "expired" and expired["sent"] and expired["expired"] and expired["attempts"] == 1

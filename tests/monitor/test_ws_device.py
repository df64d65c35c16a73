"""A real WebSocket device seen on /monitor/communications (comm_join, comm_rx for telemetry and
events, comm_tx, comm_txconfirm as literal envelopes), and a TX to it whose Reference is carried
through to comm_tx and comm_txconfirm."""

from __future__ import annotations

import pytest

from tests.devices.helpers import create_device, open_websocket_url, receive_json, register, send_json, ws_url

from .helpers import next_frame, open_monitor, send_frame

WS = "7773"  # hex of "ws"


@pytest.fixture
def daemon_sections():
    return {"monitor": {"timezone": "Asia/Kolkata"}}


def settled(frame: dict) -> dict:
    """The frame without its time and seq (checked separately)."""
    assert frame.pop("DT").endswith("+05:30")
    assert isinstance(frame.pop("Seq"), int)
    return frame


async def next_comm(ws) -> dict:
    while "CommType" not in (frame := await next_frame(ws)):
        pass
    return frame


async def test_device_uplinks_as_communications(daemon):
    device = await create_device(daemon, name="boiler")
    dev = device["id"]
    async with open_monitor(daemon) as monitor, open_websocket_url(ws_url(daemon)) as ws:
        reply = await register(ws, device)
        join = settled(await next_comm(monitor))
        session = join["Extra"].pop("session")
        assert session and join == {
            "CommType": "comm_join", "MsgType": "comm_join", "Connector": WS, "AppEui": "", "DevEui": dev,
            "Port": "", "GatewayEUIs": [], "Payload": "",
            "Extra": {"type": "register", "name": "boiler", "dialect": "json", "remote": "127.0.0.1"}}
        assert reply["device_id"] == dev

        await send_json(ws, {"type": "telemetry", "payload": {"t": 21.5, "on": True}, "id": 7})
        assert await receive_json(ws) == {"type": "ack", "id": 7}
        assert settled(await next_comm(monitor)) == {
            "CommType": "comm_rx", "MsgType": "comm_rx", "Connector": WS, "AppEui": "", "DevEui": dev,
            "Port": "", "GatewayEUIs": [], "Payload": b'{"t":21.5,"on":true}'.hex(),
            "Extra": {"type": "telemetry", "msg_id": "7", "dialect": "json", "t": "21.5", "on": "true"}}

        await send_json(ws, {"type": "event", "event": "door_open", "payload": {"zone": 2}})
        assert settled(await next_comm(monitor)) == {
            "CommType": "comm_rx", "MsgType": "comm_rx", "Connector": WS, "AppEui": "", "DevEui": dev,
            "Port": "", "GatewayEUIs": [], "Payload": b'{"zone":2}'.hex(),
            "Extra": {"type": "event", "event": "door_open", "dialect": "json", "zone": "2"}}


async def test_tx_to_a_websocket_device_carries_the_reference_to_comm_tx_and_comm_txconfirm(daemon):
    device = await create_device(daemon)
    dev = device["id"]
    async with open_monitor(daemon, types="comm_tx,comm_txconfirm") as monitor, \
            open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await send_frame(monitor, {"function": "TX", "DevEui": dev, "Port": "5", "Payload": "48690a",
                                   "WSCommand": "set_led", "Reference": "ref-42", "Confirm": True})
        assert await next_frame(monitor) == {"Result": "Success", "Details": "", "Reference": "ref-42"}

        command = await receive_json(ws)
        assert command["type"] == "command" and command["command"] == "set_led"
        assert command["payload"] == {"port": 5, "data": "48690a"}
        tx = settled(await next_frame(monitor))
        assert tx == {
            "CommType": "comm_tx", "MsgType": "comm_tx", "Connector": WS, "AppEui": "", "DevEui": dev,
            "Port": "5", "GatewayEUIs": [], "Payload": "48690a", "Command": "set_led",
            "Reference": "ref-42", "Confirmation": True, "Extra": {"priority": 0, "window": "BOTH"}}

        await send_json(ws, {"type": "command_result", "id": command["id"], "ok": True, "result": {"led": "on"}})
        confirm = settled(await next_frame(monitor))
        assert confirm == {
            "CommType": "comm_txconfirm", "MsgType": "comm_txconfirm", "Connector": WS, "AppEui": "",
            "DevEui": dev, "Port": "", "GatewayEUIs": [], "Payload": b'{"led":"on"}'.hex(), "Reference": "ref-42",
            "Extra": {"type": "command_result", "command_id": command["id"], "command": "set_led"}}


async def test_tx_without_confirm_or_wscommand_is_a_tx_command_and_no_txconfirm(daemon):
    device = await create_device(daemon)
    async with open_monitor(daemon, types="comm_tx,comm_txconfirm,comm_rx") as monitor, \
            open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await send_frame(monitor, {"function": "TX", "DevEUI": device["id"], "Port": 1, "Payload": "HI!",
                                   "Raw": True, "Reference": "plain", "Window": "rx1"})
        assert (await next_frame(monitor))["Result"] == "Success"
        command = await receive_json(ws)
        assert (command["command"], command["payload"]) == ("tx", {"port": 1, "data": "484921"})
        tx = await next_frame(monitor)
        assert (tx["CommType"], tx["Reference"], tx["Confirmation"]) == ("comm_tx", "plain", False)
        assert tx["Payload"] == b"HI!".hex() and tx["Extra"] == {"priority": 0, "window": "RX1"}
        await send_json(ws, {"type": "command_result", "id": command["id"], "ok": True})
        # No comm_txconfirm for an unconfirmed downlink: the next frame is the telemetry below.
        await send_json(ws, {"type": "telemetry", "payload": {"after": 1}})
        assert (await next_frame(monitor))["CommType"] == "comm_rx"

"""Device records on the monitoring streams (pure mappers) and TX requests for WebSocket devices."""

import json
from zoneinfo import ZoneInfo

from gatewayd.journal.record import Record
from gatewayd.connectors.monitor.tx_request import TxRequest, parse_tx
from gatewayd.connectors.monitor.resiot import encode_envelope
from gatewayd.gateway import comm_tables

from tests.conftest import wait_for

from .helpers import create_device, open_websocket_url, receive_json, register, ws_url

comms = comm_tables()

TS = "2026-06-12T09:15:30.000000Z"


def envelope(record: Record) -> dict:
    [comm] = comms.communications(record)
    return json.loads(encode_envelope(comm, ZoneInfo("UTC")))


def test_telemetry_is_comm_rx_with_hex_json_payload():
    record = Record(10, TS, "device.telemetry", {"device_id": "d1", "name": "n", "connector": "ws",
                                                 "payload": {"t": 22.5, "nested": {"a": 1}}, "msg_id": 7})
    env = envelope(record)
    assert env["CommType"] == env["MsgType"] == "comm_rx"
    assert env["Connector"] == b"ws".hex() and env["DevEui"] == "d1" and env["AppEui"] == ""
    assert bytes.fromhex(env["Payload"]).decode() == '{"t":22.5,"nested":{"a":1}}'
    assert env["Extra"]["type"] == "telemetry" and env["Extra"]["t"] == "22.5" and env["Extra"]["msg_id"] == "7"
    assert env["Seq"] == 10


def test_register_sent_and_confirm():
    joined = envelope(Record(1, TS, "device.connected", {"device_id": "d1", "name": "n", "connector": "ws",
                                                         "session": "s", "remote": "127.0.0.1", "dialect": "json"}))
    assert joined["CommType"] == "comm_join"
    sent = envelope(Record(2, TS, "command.sent", {"device_id": "d1", "command_id": "cmd_1", "command": "tx",
                                                   "payload": {"port": 5, "data": "4849"}, "reference": "ref1",
                                                   "confirm": True}))
    assert (sent["CommType"], sent["Command"], sent["Reference"], sent["Confirmation"], sent["Port"]) == \
        ("comm_tx", "tx", "ref1", True, "5")
    # A command from the REST API: what was asked to be sent is its JSON payload.
    assert sent["Payload"] == b'{"port":5,"data":"4849"}'.hex() and sent["Extra"]["window"] == "BOTH"
    # A TX request's command carries its window: Payload is the request's own bytes.
    from_tx = envelope(Record(2, TS, "command.sent", {"device_id": "d1", "command_id": "cmd_2", "command": "tx",
                                                      "payload": {"port": 5, "data": "4849"}, "window": "RX2"}))
    assert from_tx["Payload"] == "4849" and from_tx["Extra"] == {"priority": 0, "window": "RX2"}
    confirmed = envelope(Record(3, TS, "command.acknowledged", {"device_id": "d1", "command_id": "cmd_1",
                                                                "command": "tx", "reference": "ref1",
                                                                "confirm": True}))
    assert confirmed["CommType"] == "comm_txconfirm" and confirmed["Reference"] == "ref1"
    unconfirmed = Record(4, TS, "command.acknowledged", {"device_id": "d1", "command_id": "c", "command": "x"})
    assert comms.communications(unconfirmed) == []


def test_actions_for_registry_and_presence():
    action = comms.action(Record(5, TS, "device.token_rotated", {"device_id": "d1", "name": "n",
                                                                 "token_hash": "sha256:x", "actor": "apikey:ops"}))
    assert (action.action_type, action.actor, action.target) == ("device_token_rotated", "apikey:ops", "d1")
    assert "token_hash" not in action.details
    offline = comms.action(Record(6, TS, "device.offline", {"device_id": "d1", "name": "n", "reason": "idle"}))
    assert offline.action_type == "device_offline" and offline.details["reason"] == "idle"


async def test_tx_becomes_a_ws_command_with_its_reference(daemon):
    device = await create_device(daemon)
    handler = next(h for h in daemon.core.comms.tx_handlers if h.connector == "ws")
    assert handler.owns(daemon.core, device["id"]) and not handler.owns(daemon.core, "0011223344556677")
    tx = parse_tx(json.dumps({"function": "TX", "Payload": "HI!", "DevEui": device["id"], "Port": 50,
                              "Reference": "abc", "Raw": True, "Confirm": True}))
    assert isinstance(tx, TxRequest)
    await handler.submit(daemon.core, device["id"], tx)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        command = await receive_json(ws)
        assert command["command"] == "tx" and command["payload"] == {"port": 50, "data": b"HI!".hex()}
        await ws.send_message(json.dumps({"type": "command_result", "id": command["id"], "ok": True}))
    stored = daemon.core.state.commands.get(command["id"])
    await wait_for(lambda: stored["state"] == "acknowledged")
    assert stored["reference"] == "abc" and stored["confirm"] is True

"""Terminals on the monitoring streams: reg -> comm_join, punches -> comm_rx, commands -> comm_tx and
comm_txconfirm, registry and presence -> actions; TX requests become terminal commands."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import trio
from trio_websocket import open_websocket_url

from gatewayd.journal.record import Record
from gatewayd.connectors.monitor.resiot import to_envelope
from gatewayd.gateway import comm_tables

from ..conftest import wait_for
from .helpers import add_terminal
from .termsim import SimTerminal, punches

comms = comm_tables()


def _envelopes(record: Record) -> list[dict]:
    return [to_envelope(c, timezone.utc) for c in comms.communications(record)]


def test_mappers_use_the_record_alone():
    ts = "2026-06-12T10:00:00.000000Z"
    rx = Record(10, ts, "attendance.punches", {
        "source": "SN9", "connector": "http", "tz": "Europe/Rome", "held": False, "cmd": "sendlog",
        "logindex": 4, "sent_count": 1,
        "punches": [{"enrollid": 1, "time": "2026-06-12 09:00:00", "mode": 1, "inout": 0, "event": 0,
                     "utc": "2026-06-12T07:00:00Z", "image": "aGVsbG8="}]})
    (env,) = _envelopes(rx)
    assert env["CommType"] == env["MsgType"] == "comm_rx"
    assert env["Connector"] == b"http".hex() and env["DevEui"] == "SN9" and env["AppEui"] == "" and env["Seq"] == 10
    payload = json.loads(bytes.fromhex(env["Payload"]))
    assert payload["record"][0]["enrollid"] == 1 and "image" not in payload["record"][0]
    assert env["Extra"] == {"type": "sendlog", "count": "1", "held": "false", "tz": "Europe/Rome",
                            "logindex": "4", "sent_count": "1"}
    join = Record(11, ts, "terminal.registered", {"sn": "SN9", "connector": "terminal", "remote": "1.2.3.4",
                                                  "cpusn": "C1", "devinfo": {"modelname": "X"}, "status": "accepted"})
    (env,) = _envelopes(join)
    assert env["CommType"] == "comm_join" and env["Connector"] == b"terminal".hex()
    assert env["Extra"]["modelname"] == "X" and env["Extra"]["type"] == "reg"
    sent = Record(12, ts, "terminal.command_sent", {"command_id": "c1", "sn": "SN9", "command": "opendoor",
                                                    "params": {"doornum": 1}, "try": 1, "reference": "r1",
                                                    "confirm": True, "connector": "terminal"})
    (env,) = _envelopes(sent)
    assert (env["CommType"], env["Command"], env["Reference"], env["Confirmation"]) == ("comm_tx", "opendoor", "r1", True)
    assert json.loads(bytes.fromhex(env["Payload"])) == {"cmd": "opendoor", "doornum": 1}
    ack = Record(13, ts, "terminal.command_acknowledged", {"command_id": "c1", "sn": "SN9", "command": "opendoor",
                                                           "reference": "r1", "confirm": True, "result": {}})
    assert [(e["CommType"], e["Reference"]) for e in _envelopes(ack)] == [("comm_txconfirm", "r1")]
    assert _envelopes(Record(14, ts, "terminal.command_acknowledged", {**ack.data, "confirm": False})) == []
    action = comms.action(Record(15, ts, "terminal.command_queued", {
        "command_id": "c1", "sn": "SN9", "command": "opendoor", "source": "apikey:ops", "params": {}}))
    assert (action.action_type, action.actor, action.target) == ("terminal_command_queued", "apikey:ops", "terminal:SN9")


async def test_tx_to_a_terminal_end_to_end(daemon, nursery):
    await add_terminal(daemon, "MON1")
    frames: list[dict] = []

    async def monitor(task_status=trio.TASK_STATUS_IGNORED):
        async with open_websocket_url(f"{daemon.ws_url}/monitor/communications?key={daemon.api_key}") as ws:
            task_status.started()
            while True:
                frames.append(json.loads(await ws.get_message()))

    await nursery.start(monitor)
    sim = SimTerminal("MON1", backlog=punches(2, start=datetime(2026, 6, 12, 7, 0)))
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await wait_for(lambda: any(f["CommType"] == "comm_rx" for f in frames))
    tx = {"function": "TX", "DevEui": "MON1", "Port": 1, "Payload": '{"cmd":"opendoor","doornum":1}',
          "Raw": True, "Confirm": True, "Reference": "door-7", "Window": "rx2"}
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as client:
        reply = (await client.post("/api/tx", json=tx)).json()
        assert reply == {"Result": "Success", "Details": "", "Reference": "door-7"}
        bad = (await client.post("/api/tx", json={**tx, "Payload": "not json"})).json()
        assert bad["Result"] == "Fail" and "JSON command" in bad["Details"]
    await wait_for(lambda: any(f["CommType"] == "comm_txconfirm" for f in frames))
    kinds = [(f["CommType"], f.get("Reference", "")) for f in frames
             if f["DevEui"] == "MON1" and f["CommType"] in ("comm_join", "comm_rx", "comm_tx", "comm_txconfirm")]
    assert kinds == [("comm_join", ""), ("comm_rx", ""), ("comm_tx", "door-7"), ("comm_txconfirm", "door-7")]
    sent = next(f for f in frames if f["CommType"] == "comm_tx" and f["DevEui"] == "MON1")
    assert sent["Extra"] == {"priority": 0, "window": "RX2"}
    assert json.loads(bytes.fromhex(sent["Payload"])) == {"cmd": "opendoor", "doornum": 1}
    assert sim.received[-1] == {"cmd": "opendoor", "doornum": 1}

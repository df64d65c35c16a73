"""The communications stream through a real daemon: every CommType's envelope, filters, the
handshake's checks, the actions stream refusing requests, and 1001 on shutdown."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionRejected, open_websocket_url

from gatewayd.journal.record import parse_ts

from .helpers import FAKE_RECORD, close_of, monitor_url, next_frame, open_monitor, send_frame

ZONE = "Asia/Kolkata"  # +05:30 all year: DT offsets are literal


@pytest.fixture
def daemon_sections():
    return {"monitor": {"timezone": ZONE}}


def check_dt(frame: dict, record) -> None:
    """DT is the record's time in the configured zone, 7 fractional digits, with the offset."""
    text = frame.pop("DT")
    assert text.endswith("+05:30") and len(text) == len("2026-11-22T08:34:05.1234560+05:30"), text
    moment = datetime.fromisoformat(text[:26] + text[27:])
    assert moment.utcoffset() == timedelta(hours=5, minutes=30)
    assert moment == parse_ts(record.ts)


async def publish_and_receive(daemon, ws, data: dict) -> dict:
    record = await daemon.core.hub.publish(FAKE_RECORD, data)
    frame = await next_frame(ws)
    assert frame.pop("Seq") == record.seq
    check_dt(frame, record)
    return frame


BASE = {"Connector": "6c6f726177616e", "AppEui": "", "GatewayEUIs": [], "Payload": ""}

CASES = {
    "comm_gwalive": (
        {"comm_type": "comm_gwalive", "connector": "lorawan", "dev": "", "gateways": ["218000AC0000A05F"],
         "extra": {"rxnb": 3, "ackr": 100.0, "lati": None}},
        {"DevEui": "", "Port": "", "GatewayEUIs": ["218000ac0000a05f"], "Extra": {"rxnb": "3", "ackr": "100.0"}},
    ),
    "comm_join": (
        {"comm_type": "comm_join", "connector": "lorawan", "dev": "0732227A557D8679", "app_eui": "006C3B194374AC7F"},
        {"DevEui": "0732227a557d8679", "AppEui": "006c3b194374ac7f", "Port": "", "Extra": {}},
    ),
    "comm_gwrx": (
        {"comm_type": "comm_gwrx", "connector": "lorawan", "dev": "0732227a557d8679", "port": 128,
         "gateways": ["218000ac0000a05f"], "payload": "9B6902", "extra": {"rssi": -18, "snr": 9.5}},
        {"DevEui": "0732227a557d8679", "Port": "128", "GatewayEUIs": ["218000ac0000a05f"], "Payload": "9b6902",
         "Extra": {"rssi": "-18", "snr": "9.5"}},
    ),
    "comm_rx": (
        {"comm_type": "comm_rx", "connector": "lorawan", "dev": "0732227a557d8679", "port": 128,
         "gateways": ["218000ac0000a05f", "218000ac0000a060"], "payload": "9b690291010f1b2401ce01c0",
         "extra": {"adr": True, "duplicate": False, "frequency": 867.3, "seqno": 1953, "sf": 7}},
        {"DevEui": "0732227a557d8679", "Port": "128", "GatewayEUIs": ["218000ac0000a05f", "218000ac0000a060"],
         "Payload": "9b690291010f1b2401ce01c0",
         "Extra": {"adr": "true", "duplicate": "false", "frequency": "867.3", "seqno": "1953", "sf": "7"}},
    ),
    "comm_tx": (
        {"comm_type": "comm_tx", "connector": "lorawan", "dev": "0732227a557d8679", "port": 1, "payload": "2525",
         "command": "", "reference": "abcdefgh", "confirmation": True},
        {"DevEui": "0732227a557d8679", "Port": "1", "Payload": "2525", "Command": "", "Reference": "abcdefgh",
         "Confirmation": True, "Extra": {"priority": 0, "window": "BOTH"}},
    ),
    "comm_txsendack": (
        {"comm_type": "comm_txsendack", "connector": "lorawan", "dev": "0732227a557d8679", "reference": "r-9",
         "error": "TOO_LATE", "extra": {"gateway": "218000ac0000a05f"}},
        {"DevEui": "0732227a557d8679", "Port": "", "Reference": "r-9", "Error": "TOO_LATE",
         "Extra": {"gateway": "218000ac0000a05f"}},
    ),
    "comm_txconfirm": (
        {"comm_type": "comm_txconfirm", "connector": "lorawan", "dev": "0732227a557d8679", "reference": "abcdefgh"},
        {"DevEui": "0732227a557d8679", "Port": "", "Reference": "abcdefgh", "Extra": {}},
    ),
}


@pytest.mark.parametrize("comm_type", list(CASES))
async def test_each_comm_type_on_the_wire(daemon, comm_type):
    data, fields = CASES[comm_type]
    async with open_monitor(daemon) as ws:
        frame = await publish_and_receive(daemon, ws, data)
    assert frame == {"CommType": comm_type, "MsgType": comm_type, **BASE, **fields}


async def test_filters_select_types_devices_and_connectors(daemon):
    async with open_monitor(daemon, types="comm_tx,comm_txconfirm") as by_type, \
            open_monitor(daemon, dev="0732227A557D8679,dev-2") as by_dev, \
            open_monitor(daemon, connector="6c6f726177616e") as by_connector:
        sent = [
            {"comm_type": "comm_rx", "dev": "dev-1", "connector": "ws"},
            {"comm_type": "comm_tx", "dev": "dev-1", "connector": "ws"},
            {"comm_type": "comm_rx", "dev": "0732227a557d8679", "connector": "lorawan"},
            {"comm_type": "comm_txconfirm", "dev": "dev-2", "connector": "ws"},
            {"comm_type": "comm_rx", "dev": "dev-3", "connector": "lorawan"},
        ]
        seqs = [(await daemon.core.hub.publish(FAKE_RECORD, d)).seq for d in sent]
        got = {}
        for name, ws, count in (("type", by_type, 2), ("dev", by_dev, 2), ("connector", by_connector, 2)):
            got[name] = [(await next_frame(ws))["Seq"] for _ in range(count)]
    assert got == {"type": [seqs[1], seqs[3]], "dev": [seqs[2], seqs[3]], "connector": [seqs[2], seqs[4]]}


@pytest.mark.parametrize("query, message", [
    ({"types": "comm_rx,comm_bogus"}, "types: unknown type 'comm_bogus'"),
    ({"since": "-1"}, "since: '-1' is not a sequence number"),
    ({"since": "12abc"}, "since: '12abc' is not a sequence number"),
    ({"since": "\u00b2"}, "is not a sequence number"),
    ({"connector": "Not A Name!"}, "connector:"),
    ({"dev": "has space"}, "dev:"),
])
async def test_bad_queries_refuse_the_handshake(daemon, query, message):
    headers = [(b"Authorization", f"Bearer {daemon.api_key}".encode())]
    with pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(monitor_url(daemon, **query), extra_headers=headers):
            pass
    assert refused.value.status_code == 400
    assert message in refused.value.body.decode()


async def test_actions_stream_answers_requests_with_fail_and_stays_open(daemon):
    async with open_monitor(daemon, "actions") as ws:
        await send_frame(ws, {"function": "TX", "Reference": "ref-1"})
        assert await next_frame(ws) == {"Result": "Fail", "Details": "the actions stream takes no requests",
                                        "Reference": "ref-1"}
        await daemon.core.hub.publish("apikey.revoked", {"key_id": "00000000"})
        assert (await next_frame(ws))["ActionType"] == "apikey_revoked"


async def test_shutdown_closes_monitors_with_1001(daemon):
    async with open_monitor(daemon) as comm_ws, open_monitor(daemon, "actions") as action_ws:
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            results = {}

            async def watch(name, ws):
                results[name] = await close_of(ws)

            nursery.start_soon(watch, "comm", comm_ws)
            nursery.start_soon(watch, "actions", action_ws)
            await daemon.stop()
    assert results["comm"][0] == 1001
    # The actions client may see server.stopping (non-durable, written at close) before the close.
    assert results["actions"][0] == 1001


async def test_monitor_sessions_are_counted_and_released(daemon):
    monitor = daemon.core.service("monitor")
    async with open_monitor(daemon), open_monitor(daemon, "actions"):
        await trio.testing.wait_all_tasks_blocked()
        assert sum(len(b.sessions) for b in monitor.broadcasts.values()) == 2
    from tests.conftest import wait_for
    await wait_for(lambda: sum(len(b.sessions) for b in monitor.broadcasts.values()) == 0)

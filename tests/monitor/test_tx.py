"""TX requests on /monitor/communications and POST /api/tx: the document's example, the spellings
clients use, every validation failure (a Fail with precise Details and the Reference, the socket
stays open), and how the connector is chosen. Connectors here are fakes (tests/monitor/helpers)."""

from __future__ import annotations

import json

import httpx
import pytest

from gatewayd.journal.writer import JournalUnavailable
from gatewayd.ops import OpError

from .helpers import FakeTx, next_frame, open_monitor, send_frame, with_tx_handlers

EUI = "0987654321abcdef"
# The document's example with its `--` comments removed.
EXAMPLE = """{
    "function": "TX",
    "Payload": "HI!",
    "AppEui": "ABCDEF1234567890",
    "DevEui": "0987654321ABCDEF",
    "Connector": "",
    "Port": 50,
    "Reference": "abcdefgh",
    "Raw": true,
    "Confirm": true
}"""


@pytest.fixture
def fake(daemon, monkeypatch):
    """Only fake connectors: `fake` owns the example's device, `alpha` owns dev-a, `beta` dev-b."""
    handlers = [FakeTx("fake", {EUI}), FakeTx("alpha", {"dev-a"}), FakeTx("beta", {"dev-b"})]
    monkeypatch.setattr(daemon.core, "comms", with_tx_handlers(daemon.core.comms, handlers))
    return handlers[0]


def tx(**fields) -> dict:
    base = {"function": "TX", "DevEui": EUI, "Port": 5, "Payload": "0102", "Reference": "ref-1"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


async def ask(ws, request) -> dict:
    """Send a request; its reply (communications that arrive meanwhile are skipped)."""
    await send_frame(ws, request)
    while "Result" not in (frame := await next_frame(ws)):
        pass
    return frame


async def test_the_documents_example_is_accepted(daemon, fake):
    async with open_monitor(daemon) as ws:
        assert await ask(ws, EXAMPLE) == {"Result": "Success", "Details": "", "Reference": "abcdefgh"}
    [(dev_key, request)] = fake.sent
    assert dev_key == EUI
    assert (request.payload, request.port, request.confirm, request.raw) == (b"HI!", 50, True, True)
    assert request.app_eui == "abcdef1234567890" and request.reference == "abcdefgh"


async def test_spellings_clients_use(daemon, fake):
    requests = [
        {"function": "TX", "DevEUI": EUI.upper(), "Port": "50", "Payload": "484921", "Reference": "a"},
        {"function": "TX", "DevEui": EUI, "Port": 7, "Payload": "AbCd", "Connector": "66616b65", "Reference": "b"},
        {"function": "TX", "deveui": EUI, "port": "0", "payload": "", "connector": "fake", "Reference": "c"},
    ]
    async with open_monitor(daemon) as ws:
        replies = [await ask(ws, r) for r in requests]
    assert [r["Result"] for r in replies] == ["Success"] * 3
    assert [r["Reference"] for r in replies] == ["a", "b", "c"]
    assert [(t.payload, t.port) for _, t in fake.sent] == [(b"HI!", 50), (b"\xab\xcd", 7), (b"", 0)]


LONG = json.dumps(tx(Pad="x" * 16400))
FAILURES = [
    ("not json", "{function: TX", "frame is not valid JSON", ""),
    ("array", "[1, 2]", "frame must be a JSON object", ""),
    ("string", '"TX"', "frame must be a JSON object", ""),
    ("no function", tx(function=...), 'function is required and must be "TX"', "ref-1"),
    ("other function", tx(function="RX"), 'function "RX" is not supported, only "TX" is', "ref-1"),
    ("function not a string", tx(function=1), 'function must be the string "TX"', "ref-1"),
    ("no DevEui", tx(DevEui=...), "DevEui is required", "ref-1"),
    ("DevEui not a string", tx(DevEui=12), "DevEui must be a string", "ref-1"),
    ("DevEui with a space", tx(DevEui="a b"), "DevEui must be a device EUI (16 hex digits) or a device id of 1 "
                                                "to 64 printable ASCII characters without spaces", "ref-1"),
    ("DevEUI and DevEui differ", {**tx(), "DevEUI": "dev-a"},
     "DevEui is given twice with different values (DevEui and DevEUI)", "ref-1"),
    ("bad AppEui", tx(AppEui="ABC"), "AppEui must be 16 hex digits, got 3 characters", "ref-1"),
    ("bad Connector", tx(Connector="Not A Name!"), "Connector must be a connector name (lower-case letters, "
                                                   "digits, '_', '.', '-', at most 32 characters) or the hex of one",
     "ref-1"),
    ("no Port", tx(Port=...), "Port is required", "ref-1"),
    ("Port text", tx(Port="five"), "Port must be an integer or a string of digits", "ref-1"),
    ("Port boolean", tx(Port=True), "Port must be an integer or a string of digits", "ref-1"),
    ("Port range", tx(Port=300), "Port 300 is out of range 0..255", "ref-1"),
    ("no Payload", tx(Payload=...), "Payload is required", "ref-1"),
    ("Payload odd hex", tx(Payload="abc"),
     "Payload must be hex with an even number of digits (Raw is false), got 3 characters", "ref-1"),
    ("Payload not hex", tx(Payload="zz"), "Payload must be hex digits only (Raw is false)", "ref-1"),
    ("Payload too long", tx(Payload="00" * 243), "Payload is 243 bytes, the limit is 242", "ref-1"),
    ("Payload not a string", tx(Payload=12), "Payload must be a string", "ref-1"),
    ("Raw not boolean", tx(Raw="yes"), "Raw must be true or false", "ref-1"),
    ("Confirm not boolean", tx(Confirm=1), "Confirm must be true or false", "ref-1"),
    ("WSCommand too long", tx(WSCommand="x" * 65), "WSCommand must be at most 64 printable characters", "ref-1"),
    ("Reference not a string", tx(Reference=5), "Reference must be a string", ""),
    ("Reference too long", tx(Reference="r" * 129), "Reference is 129 characters long, the limit is 128", ""),
    ("frame too long", LONG, f"frame is {len(LONG)} characters long, the limit is 16384", ""),
    ("unknown device", tx(DevEui="nobody"), "DevEui 'nobody': no such device", "ref-1"),
    ("unknown EUI, no LoRaWAN", tx(DevEui="1111222233334444"),
     "DevEui '1111222233334444': LoRaWAN downlinks are not available in this gatewayd yet", "ref-1"),
    ("LoRaWAN connector", tx(Connector="lorawan"),
     "Connector 'lorawan': LoRaWAN downlinks are not available in this gatewayd yet", "ref-1"),
    ("unknown connector", tx(Connector="gamma"),
     "Connector 'gamma' cannot send downlinks (connectors that can: alpha, beta, fake)", "ref-1"),
    ("wrong connector", tx(DevEui="dev-a", Connector="beta"), "DevEui 'dev-a' is on connector 'alpha', not 'beta'",
     "ref-1"),
]


async def test_every_validation_failure_is_a_fail_and_the_socket_stays_open(daemon, fake):
    async with open_monitor(daemon) as ws:
        for name, request, details, reference in FAILURES:
            reply = await ask(ws, request)
            assert reply == {"Result": "Fail", "Details": details, "Reference": reference}, name
        await ws.send_message(b"\xff\xfe not utf-8")
        assert await next_frame(ws) == {"Result": "Fail", "Details": "frame is not valid UTF-8", "Reference": ""}
        assert (await ask(ws, tx()))["Result"] == "Success"
    assert len(fake.sent) == 1


@pytest.mark.parametrize("error, details", [
    (OpError("invalid", "device dev-a is disabled", 422), "device dev-a is disabled"),
    (JournalUnavailable("disk full"), "the journal cannot record the downlink right now; retry later"),
    (RuntimeError("bug"), "internal error; see the server log"),
])
async def test_a_connectors_refusal_is_a_fail_with_its_message(daemon, fake, error, details):
    fake.refuse = error
    async with open_monitor(daemon) as ws:
        assert await ask(ws, tx()) == {"Result": "Fail", "Details": details, "Reference": "ref-1"}
        fake.refuse = None
        assert (await ask(ws, tx(Reference="again")))["Result"] == "Success"


async def test_without_connector_the_one_the_device_was_last_heard_on_wins(daemon, monkeypatch):
    from tests.devices.helpers import create_device, open_websocket_url, register, ws_url

    device = await create_device(daemon)
    first, ws_like = FakeTx("first", {device["id"]}), FakeTx("ws", {device["id"]})
    monkeypatch.setattr(daemon.core, "comms", with_tx_handlers(daemon.core.comms, [first, ws_like]))
    async with open_monitor(daemon) as monitor:
        assert (await ask(monitor, tx(DevEui=device["id"])))["Result"] == "Success"
        assert len(first.sent) == 1  # never heard: the first connector that owns it
        async with open_websocket_url(ws_url(daemon)) as device_ws:
            await register(device_ws, device)
        assert daemon.core.state.devices.get(device["id"])["connector"] == "ws"
        assert (await ask(monitor, tx(DevEui=device["id"])))["Result"] == "Success"
        assert len(ws_like.sent) == 1


# -- POST /api/tx ---------------------------------------------------------------------------------------
async def test_post_api_tx_same_json_same_reply(daemon, fake):
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as client:
        ok = await client.post("/api/tx", content=EXAMPLE)
        bad = await client.post("/api/tx", json=tx(Port=300))
        unknown = await client.post("/api/tx", json=tx(DevEui="nobody"))
        garbage = await client.post("/api/tx", content=b"\x00\x01")
    assert (ok.status_code, ok.json()) == (200, {"Result": "Success", "Details": "", "Reference": "abcdefgh"})
    assert (bad.status_code, bad.json()) == (400, {"Result": "Fail", "Details": "Port 300 is out of range 0..255",
                                                   "Reference": "ref-1"})
    assert (unknown.status_code, unknown.json()["Details"]) == (404, "DevEui 'nobody': no such device")
    assert (garbage.status_code, garbage.json()["Details"]) == (400, "frame is not valid JSON")
    assert len(fake.sent) == 1


async def test_post_api_tx_needs_an_api_key(daemon, fake):
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        refused = await client.post("/api/tx", content=EXAMPLE)
    assert refused.status_code == 401 and "Result" not in refused.json()
    assert fake.sent == []

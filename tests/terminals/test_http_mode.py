"""HTTP mode: POST /api/device-http with reg, sendlog and checklive, against a real daemon."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest
import trio

from ..conftest import wait_for
from .helpers import add_terminal, records_of, stored, stored_keys
from .termsim import SimTerminal, punches, quirky


@pytest.fixture
async def client(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as c:
        yield c


async def test_reg_sendlog_checklive(daemon, client):
    await add_terminal(daemon, "AYSK01", name="front door", tz="Europe/Rome")
    sim = SimTerminal("AYSK01")
    reply = (await sim.post(client, sim.reg_body())).json()
    assert reply["ret"] == "reg" and reply["result"] is True
    assert datetime.strptime(reply["cloudtime"], "%Y-%m-%dT%H:%M:%SZ")  # the seed's ISO UTC form

    records = punches(10, start=datetime(2026, 6, 12, 9, 0))
    body = sim.sendlog_body(records)
    response = await sim.post(client, body)
    assert response.status_code == 200
    reply = response.json()
    assert reply == {"ret": "sendlog", "result": True, "count": 10, "logindex": body["logindex"],
                     "cloudtime": reply["cloudtime"]}
    rows = await stored(daemon.core, "AYSK01")
    assert len(rows) == 10
    first = rows[0]
    assert (first.time, first.tz) == ("2026-06-12 09:00:00", "Europe/Rome")
    assert first.utc == "2026-06-12T07:00:00Z"  # CEST is UTC+2 in June

    live = (await sim.post(client, {"cmd": "checklive", "sn": "AYSK01", "time": "2026-06-12 09:10:00"})).json()
    assert live["ret"] == "checklive" and live["result"] is True
    terminal = daemon.core.state.terminals.get("AYSK01")
    assert terminal["online"] and terminal["connector"] == "http"
    assert terminal["model"] == "AiFace-Mars" and terminal["cpusn"] == "CPU123"


async def test_local_cloudtime(daemon, client):
    await add_terminal(daemon, "LOC1", tz="Asia/Tokyo", cloudtime="local")
    reply = (await SimTerminal("LOC1").post(client, {"cmd": "checklive", "sn": "LOC1"})).json()
    shown = datetime.strptime(reply["cloudtime"], "%Y-%m-%d %H:%M:%S")
    tokyo_now = datetime.now(timezone.utc).replace(tzinfo=None).timestamp() + 9 * 3600
    assert abs(shown.timestamp() - tokyo_now) < 5


async def test_firmware_quirks(daemon, client):
    await add_terminal(daemon, "QRK1")
    sim = SimTerminal("QRK1")
    reply = (await sim.post(client, quirky(sim.reg_body(flat=True)))).json()
    assert reply["result"] is True
    assert daemon.core.state.terminals.get("QRK1")["devinfo"]["modelname"] == "AiFace-Mars"
    records = punches(2)
    records[0]["temp"] = 3650
    records[1]["temp"] = "36.4"
    text = quirky(sim.sendlog_body(records))
    assert ", ]" in text and ",}" in text and '"sn " : " QRK1 "' in text
    reply = (await sim.post(client, text)).json()
    assert reply["result"] is True and reply["count"] == 2
    temps = sorted(p.temp for p in await stored(daemon.core, "QRK1"))
    assert temps == [36.4, 36.5]


async def test_resend_is_acknowledged_and_stored_once(daemon, client):
    await add_terminal(daemon, "DUP1")
    sim = SimTerminal("DUP1")
    body = sim.sendlog_body(punches(10))
    for _ in range(3):  # the reply was "lost": the terminal sends the same batch again
        reply = (await sim.post(client, body)).json()
        assert reply["result"] is True and reply["count"] == 10
    # a resend that spells the time with a 'T' and overlaps the first batch
    overlap = [dict(r, time=r["time"].replace(" ", "T")) for r in body["record"][5:]] + punches(
        3, start=datetime(2026, 6, 13, 8, 0))
    assert (await sim.post(client, sim.sendlog_body(overlap))).json()["result"] is True
    keys = await stored_keys(daemon.core, "DUP1")
    assert len(keys) == 13 == len(set(keys))


async def test_concurrent_duplicates_are_stored_once(daemon, client):
    await add_terminal(daemon, "DUP2")
    sim = SimTerminal("DUP2")
    body = sim.sendlog_body(punches(10))
    replies = []

    async def send():
        replies.append((await sim.post(client, body)).json())

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(send)
    assert all(r["result"] is True for r in replies) and len(replies) == 8
    assert len(await stored(daemon.core, "DUP2")) == 10


async def test_far_off_clock_is_flagged_not_dropped(daemon, client):
    await add_terminal(daemon, "SKEW1")
    sim = SimTerminal("SKEW1")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    records = punches(1, start=datetime(2000, 1, 1, 0, 0)) + punches(1, start=now, enrollid=50)
    assert (await sim.post(client, sim.sendlog_body(records))).json()["result"] is True
    rows = {p.enrollid: p for p in await stored(daemon.core, "SKEW1")}
    assert rows[1].skew is True and rows[50].skew is False
    listed = (await client.get("/api/attendance", params={"sn": "SKEW1"}, headers=daemon.auth)).json()
    flags = {p["enrollid"]: p["flags"] for p in listed["punches"]}
    assert flags == {1: ["clock_skew"], 50: []}


async def test_times_at_the_ends_of_the_calendar(daemon, client):
    for sn, tz in (("EDGE1", "Asia/Tokyo"), ("EDGE2", "America/New_York")):
        await add_terminal(daemon, sn, tz=tz)
        sim = SimTerminal(sn)
        records = [{"enrollid": 1, "time": "0001-01-01 00:00:00"}, {"enrollid": 1, "time": "9999-12-31 23:59:59"}]
        assert (await sim.post(client, sim.sendlog_body(records))).json()["result"] is True
        assert [p.skew for p in await stored(daemon.core, sn)] == [True, True]
    for zone in ("Asia/Tokyo", "America/New_York"):
        response = await client.get("/api/attendance", params={"format": "csv", "tz": zone}, headers=daemon.auth)
        assert response.status_code == 200 and response.text.count("0001-01-01") >= 2


@pytest.mark.parametrize("body, status, code", [
    (b"this is not json", 400, "bad_json"),
    (b"\xff\xfe not utf-8", 400, "bad_json"),
    (b"[1, 2, 3]", 400, "bad_json"),
    (b'{"sn": "X1"}', 400, "missing_field"),
    (b'{"cmd": "sendlog", "count": 1, "record": []}', 400, "missing_field"),
    (b'{"cmd": "checklive", "sn": 42}', 400, "invalid"),
    (b'{"cmd": "checklive", "sn": ""}', 400, "invalid"),
    (b'{"cmd": 7, "sn": "X1"}', 400, "invalid"),
])
async def test_bad_requests_get_400_with_a_precise_error(daemon, client, body, status, code):
    response = await client.post("/api/device-http", content=body)
    assert response.status_code == status
    error = response.json()
    assert error["code"] == code and error["message"] and error["result"] is False


async def test_a_qr_code_read_is_answered_and_streamed_as_comm_rx(daemon, client):
    from gatewayd.gateway import comm_tables

    comms = comm_tables()
    from gatewayd.journal.record import Record
    await add_terminal(daemon, "QR1")
    reply = (await client.post("/api/device-http", json={"cmd": "sendqrcode", "sn": "QR1", "record": "GUEST-42"})).json()
    assert reply == {"ret": "sendqrcode", "result": True}
    missing = (await client.post("/api/device-http", json={"cmd": "sendqrcode", "sn": "QR1"})).json()
    assert missing["result"] is False and "no 'record'" in missing["reason"]
    unknown = (await client.post("/api/device-http", json={"cmd": "sendqrcode", "sn": "NOPE", "qrcode": "x"})).json()
    assert (unknown["ret"], unknown["result"]) == ("sendqrcode", False)
    data = records_of(daemon.core, "terminal.qrcode")
    assert data == [{"sn": "QR1", "code": "GUEST-42", "connector": "http"}]
    comm, = comms.communications(Record(1, "2026-06-12T08:00:00.000000Z", "terminal.qrcode", data[0]))
    assert (comm.comm_type, comm.dev_eui, comm.payload, comm.extra["qrcode"]) == ("comm_rx", "QR1", b"GUEST-42",
                                                                                  "GUEST-42")


async def test_unknown_messages_are_answered_counted_and_streamed(daemon, client):
    from gatewayd.gateway import comm_tables

    comms = comm_tables()
    from gatewayd.journal.record import Record
    response = await client.post("/api/device-http", content=b'{"cmd": "Dance", "sn": "X1", "step": 2}')
    assert response.status_code == 200
    reply = response.json()
    assert (reply["ret"], reply["result"]) == ("dance", False)
    assert reply["reason"].startswith("unknown_cmd: unknown cmd 'Dance'")
    metrics = (await client.get("/metrics", headers=daemon.auth)).text
    assert 'gatewayd_terminals_unknown_messages_total{connector="http"} 1' in metrics
    record = await wait_for(lambda: records_of(daemon.core, "terminal.unknown_message"))
    action = comms.action(Record(1, "2026-06-12T08:00:00.000000Z", "terminal.unknown_message", record[0]))
    assert (action.action_type, action.target) == ("terminal_unknown_message", "terminal:X1")
    assert action.details["cmd"] == "dance" and "unknown cmd" in action.details["error"]


@pytest.mark.parametrize("records, words", [
    ("not a list", "must be a list"),
    ([{"enrollid": 1}], "no 'time'"),
    ([{"enrollid": "abc", "time": "2026-06-12 09:00:00"}], "enrollid must be an integer"),
    ([{"enrollid": 1, "time": "yesterday"}], "must look like"),
    ([{"enrollid": 1, "time": "2026-02-30 09:00:00"}], "not a real date"),
    ([{"enrollid": 1, "time": "2026-06-12 09:00:00", "inout": "out"}], "inout must be an integer"),
])
async def test_bad_records_are_refused_whole(daemon, client, records, words):
    await add_terminal(daemon, "BAD1")
    good = punches(3)
    body = {"cmd": "sendlog", "sn": "BAD1", "count": 4, "logindex": 1,
            "record": good + records if isinstance(records, list) else records}
    response = await client.post("/api/device-http", content=json.dumps(body))
    assert response.status_code == 200  # terminals read the body, not the status
    reply = response.json()
    assert reply["ret"] == "sendlog" and reply["result"] is False and words in reply["reason"]
    assert await stored(daemon.core, "BAD1") == []  # never a partial store


async def test_missing_record_list(daemon, client):
    await add_terminal(daemon, "BAD2")
    reply = (await client.post("/api/device-http", content=b'{"cmd":"sendlog","sn":"BAD2"}')).json()
    assert reply == {"ret": "sendlog", "result": False, "reason": "missing_field: sendlog has no 'record'"}


async def test_oversized_body(daemon, client):
    limit = daemon.core.settings.server.max_body_bytes
    body = json.dumps({"cmd": "sendlog", "sn": "BIG", "record": [], "pad": "x" * limit})
    response = await client.post("/api/device-http", content=body)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


async def test_journal_failure_is_a_retryable_refusal(daemon, client):
    await add_terminal(daemon, "JF1")
    sim = SimTerminal("JF1")
    body = sim.sendlog_body(punches(4))
    daemon.core.writer.failed = OSError(28, "No space left on device")
    try:
        response = await sim.post(client, body)
    finally:
        daemon.core.writer.failed = None
    assert response.status_code == 503
    assert response.json()["result"] is False and "again later" in response.json()["reason"]
    assert await stored(daemon.core, "JF1") == []
    assert (await sim.post(client, body)).json()["result"] is True
    assert len(await stored(daemon.core, "JF1")) == 4


async def test_dedup_survives_a_restart(daemon, client):
    await add_terminal(daemon, "RST1")
    sim = SimTerminal("RST1")
    body = sim.sendlog_body(punches(10))
    assert (await sim.post(client, body)).json()["result"] is True
    await daemon.core.service("compactor").compact()  # half of it from a snapshot ...
    second = sim.sendlog_body(punches(5, start=datetime(2026, 7, 1, 8, 0)))
    assert (await sim.post(client, second)).json()["result"] is True  # ... half from the journal
    await daemon.restart()
    async with httpx.AsyncClient(base_url=daemon.base_url) as fresh:
        for batch in (body, second):
            assert (await sim.post(fresh, batch)).json()["result"] is True
    keys = await stored_keys(daemon.core, "RST1")
    assert len(keys) == 15 == len(set(keys))


async def test_sendlog_is_answered_in_front_of_the_web_framework(daemon, client):
    """POST /api/device-http is a plain-ASGI route (gatewayd/web/asgi_http.py): the framework's
    own view for the path is never reached, and the answers are the same."""
    app = daemon.core.extras["web_app"]
    endpoint = next(rule.endpoint for rule in app.url_map.iter_rules() if rule.rule == "/api/device-http")

    async def not_here():
        raise AssertionError("the framework served a request the front answers")

    app.view_functions[endpoint] = not_here
    await add_terminal(daemon, "FRONT1")
    sim = SimTerminal("FRONT1")
    response = await sim.post(client, sim.sendlog_body(punches(3)))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json()["result"] is True and response.json()["count"] == 3
    assert len(await stored(daemon.core, "FRONT1")) == 3
    assert (await client.get("/api/device-http")).status_code == 405  # other methods: the framework's answer
    bad = await client.post("/api/device-http", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["result"] is False

"""The attendance store: JSON and CSV export, time zones, code tables, the XML dialect, the CLI."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from gatewayd import ops
from gatewayd.connectors.terminals.attendance import CSV_COLUMNS

from ..conftest import run_cli
from .helpers import add_terminal, stored
from .termsim import SimTerminal, punches


@pytest.fixture
async def client(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth, timeout=10) as c:
        yield c


async def _post_punches(daemon, sn, records, **settings):
    await add_terminal(daemon, sn, **settings)
    sim = SimTerminal(sn)
    async with httpx.AsyncClient(base_url=daemon.base_url) as c:
        assert (await sim.post(c, sim.sendlog_body(records))).json()["result"] is True


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_csv_export_shows_zones_explicitly(daemon, client):
    await _post_punches(daemon, "CSV1", [
        {"enrollid": 7, "time": "2026-01-15 08:30:00", "mode": 1, "inout": 0, "event": 0},
        {"enrollid": 7, "time": "2026-07-15 17:45:10", "mode": 2, "inout": 1, "event": 0, "temp": 36.6}],
        tz="America/New_York")
    response = await client.get("/api/attendance", params={"format": "csv", "sn": "CSV1"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines()[0] == ",".join(CSV_COLUMNS)
    winter, summer = _csv(response.text)
    assert (winter["time"], winter["timezone"], winter["utc"]) == (
        "2026-01-15 08:30:00", "America/New_York", "2026-01-15T13:30:00Z")   # EST, UTC-5
    assert (summer["time"], summer["utc"], summer["temp"]) == ("2026-07-15 17:45:10", "2026-07-15T21:45:10Z", "36.6")
    assert summer["terminal_time"] == "2026-07-15 17:45:10" and summer["terminal_timezone"] == "America/New_York"
    assert (summer["inout"], summer["inout_name"]) == ("1", "out")

    in_rome = _csv((await client.get("/api/attendance", params={"format": "csv", "tz": "Europe/Rome"})).text)
    assert [(r["time"], r["timezone"]) for r in in_rome] == [
        ("2026-01-15 14:30:00", "Europe/Rome"), ("2026-07-15 23:45:10", "Europe/Rome")]
    assert [r["terminal_time"] for r in in_rome] == ["2026-01-15 08:30:00", "2026-07-15 17:45:10"]


async def test_filters_and_paging(daemon, client):
    await _post_punches(daemon, "FLT1", punches(20, step_minutes=60), tz="UTC")  # 09:00 on 12 June, hourly
    await _post_punches(daemon, "FLT2", punches(5), tz="UTC")
    day = (await client.get("/api/attendance", params={"from": "2026-06-12", "to": "2026-06-12", "sn": "FLT1"})).json()
    assert len(day["punches"]) == 15  # 09:00 .. 23:00
    # bounds without a zone are read in `tz`: 12 June 00:00 in Tokyo is 11 June 15:00 UTC
    tokyo = (await client.get("/api/attendance", params={"to": "2026-06-12T20:00:00", "tz": "Asia/Tokyo",
                                                           "sn": "FLT1"})).json()
    assert len(tokyo["punches"]) == 3  # 09:00, 10:00, 11:00 UTC
    assert tokyo["punches"][0]["time"] == "2026-06-12 18:00:00"
    window = (await client.get("/api/attendance", params={"from": "2026-06-12T10:00:00Z",
                                                            "to": "2026-06-12T12:00:00+00:00"})).json()
    assert [p["utc"] for p in window["punches"] if p["sn"] == "FLT1"] == [
        "2026-06-12T10:00:00Z", "2026-06-12T11:00:00Z", "2026-06-12T12:00:00Z"]
    person = (await client.get("/api/attendance", params={"enrollid": 3, "sn": "FLT1"})).json()
    assert {p["enrollid"] for p in person["punches"]} == {3} and len(person["punches"]) == 3
    seen, after = [], 0
    while after is not None:
        page = (await client.get("/api/attendance", params={"limit": 7, "after": after})).json()
        seen += [p["id"] for p in page["punches"]]
        after = page["next_after"]
    assert len(seen) == 25 == len(set(seen))


@pytest.mark.parametrize("params, words", [
    ({"from": "last tuesday"}, "neither YYYY-MM-DD"),
    ({"tz": "Nowhere/Land"}, "unknown time zone"),
    ({"format": "xlsx"}, "format must be"),
    ({"enrollid": "abc"}, "enrollid must be an integer"),
    ({"limit": "0"}, "limit must be"),
])
async def test_bad_queries(daemon, client, params, words):
    response = await client.get("/api/attendance", params=params)
    assert response.status_code == 422 and words in response.json()["message"]


async def test_query_needs_an_operator(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url) as anonymous:
        assert (await anonymous.get("/api/attendance")).status_code == 401


async def test_code_tables_name_raw_codes(daemon, client):
    daemon.core.settings.terminals.codes = {
        "default": {"mode": {"1": "fingerprint"}},
        "AiFace-Mars": {"mode": {"8": "face"}, "event": {"0": "normal", "3": "duress"}}}
    await add_terminal(daemon, "CODE1")
    sim = SimTerminal("CODE1")
    async with httpx.AsyncClient(base_url=daemon.base_url) as c:
        await sim.post(c, sim.reg_body())
        records = [{"enrollid": 1, "time": "2026-06-12 09:00:00", "mode": 8, "inout": 0, "event": 3},
                   {"enrollid": 2, "time": "2026-06-12 09:00:00", "mode": 1, "inout": 1, "event": 0},
                   {"enrollid": 3, "time": "2026-06-12 09:00:00", "mode": 99, "inout": 5, "event": 77}]
        await sim.post(c, sim.sendlog_body(records))
    rows = (await client.get("/api/attendance", params={"sn": "CODE1"})).json()["punches"]
    assert [(r["mode"], r["mode_name"], r["inout_name"], r["event_name"]) for r in rows] == [
        (8, "face", "in", "duress"), (1, "fingerprint", "out", "normal"), (99, "", "", "")]


async def test_xml_dialect_attendance_shares_the_store_and_dedup(daemon, client):
    device = await ops.call(daemon.core, "device.create", {"name": "bio-reader"})
    frame = ('<attendance id="9"><record enrollid="12" time="2026-06-12 09:15:30" mode="8" inout="0" event="0"/>'
             '<record enrollid="13" time="2026-06-12 09:16:00" mode="8" inout="1" event="0"/></attendance>')
    async with open_websocket_url(daemon.ws_url + "/ws") as ws:
        await ws.send_message(f'<register device_id="{device["id"]}" token="{device["token"]}"/>')
        with trio.fail_after(5):
            assert (await ws.get_message()).startswith("<registered")
            for _ in range(2):  # a resend after a lost ack
                await ws.send_message(frame)
                assert await ws.get_message() == '<ack id="9"/>'
    rows = await stored(daemon.core, device["id"])
    assert sorted(p.enrollid for p in rows) == [12, 13]
    assert {p.connector for p in rows} == {"ws"}
    listed = (await client.get("/api/attendance", params={"sn": device["id"]})).json()["punches"]
    assert [p["timezone"] for p in listed] == ["UTC", "UTC"]


async def test_cli_export_offline(daemon):
    await _post_punches(daemon, "OFF1", punches(4), tz="Europe/Berlin")
    state_dir = str(daemon.state_dir)
    await daemon.stop()
    result = await trio.to_thread.run_sync(lambda: run_cli(
        "attendance", "export", "--from", "2026-06-12", "--to", "2026-06-12", "--tz", "Asia/Kolkata",
        "--format", "csv", "--state-dir", state_dir))
    assert result.returncode == 0, result.stderr
    rows = _csv(result.stdout)
    assert len(rows) == 4 and {r["timezone"] for r in rows} == {"Asia/Kolkata"}
    assert rows[0]["terminal_time"] == "2026-06-12 09:00:00" and rows[0]["time"] == "2026-06-12 12:30:00"
    as_json = await trio.to_thread.run_sync(lambda: run_cli(
        "attendance", "export", "--sn", "OFF1", "--format", "json", "--json", "--state-dir", state_dir))
    assert len(json.loads(as_json.stdout)) == 4
    await daemon.start()

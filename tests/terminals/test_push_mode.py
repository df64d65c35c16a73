"""ZKTeco PUSH terminals against a real daemon on 127.0.0.1, driven by the simulator in pushsim."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
import trio

from gatewayd import ops
from gatewayd.gateway import comm_tables

communications = comm_tables().communications
from gatewayd.connectors.monitor.tx_dispatch import submit_tx

from .helpers import add_terminal, records_of, stored
from .pushsim import PushTerminal, attlog_row, utc_now


@pytest.fixture
async def client(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as c:
        yield c


def day(n: int = 0) -> datetime:
    return datetime(2026, 6, 12, 8, 0) + timedelta(days=n)


async def test_handshake_options_and_date_header(daemon, client):
    await add_terminal(daemon, "PUSH1", tz="Europe/Rome")
    sim = PushTerminal("PUSH1", client)
    response = await sim.handshake()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for key in ("Stamp", "ATTLOGStamp", "OpStamp", "OPERLOGStamp", "ErrorDelay", "Delay", "TransTimes",
                "TransInterval", "TransFlag", "Realtime", "Encrypt", "TimeZone"):
        assert key in sim.options, key
    assert sim.options["Stamp"] == "0" and sim.options["Realtime"] == "1" and sim.options["Encrypt"] == "0"
    rome_hours = utc_now().astimezone(ZoneInfo("Europe/Rome")).utcoffset() / timedelta(hours=1)
    assert sim.options["TimeZone"] == str(int(rome_hours))
    # The clock the terminal sets from the Date header plus TimeZone is Rome's wall clock.
    rome_now = utc_now().astimezone(ZoneInfo("Europe/Rome")).replace(tzinfo=None)
    assert abs((sim.local_clock() - rome_now).total_seconds()) < 5
    terminal = (await client.get("/api/terminals/PUSH1", headers=daemon.auth)).json()
    assert terminal["protocol"] == "push" and terminal["connector"] == "push" and terminal["online"] is True
    assert terminal["devinfo"]["pushver"] == "2.4.1"


async def test_every_reply_has_a_date_header(daemon, client):
    await add_terminal(daemon, "DATE1")
    for method, path, params in (("GET", "/iclock/cdata", {"SN": "DATE1", "options": "all"}),
                                 ("POST", "/iclock/cdata", {"SN": "DATE1", "table": "ATTLOG"}),
                                 ("GET", "/iclock/getrequest", {"SN": "DATE1"}),
                                 ("POST", "/iclock/devicecmd", {"SN": "DATE1"}),
                                 ("POST", "/iclock/registry", {"SN": "DATE1"}),
                                 ("GET", "/iclock/push", {"SN": "DATE1"}),
                                 ("GET", "/iclock/ping", {"SN": "DATE1"}),
                                 ("GET", "/iclock/cdata", {}),
                                 ("GET", "/iclock/getrequest", {"SN": "REJECT-ME"})):
        if params.get("SN") == "REJECT-ME":
            await client.get("/iclock/cdata", params={"SN": "REJECT-ME"})
            await ops.call(daemon.core, "terminal.reject", {"sn": "REJECT-ME"})
        response = await client.request(method, path, params=params, content=b"")
        sent = parsedate_to_datetime(response.headers["Date"])
        assert abs((sent - utc_now()).total_seconds()) < 5, (path, response.headers["Date"])
        expected = 400 if not params else 403 if params["SN"] == "REJECT-ME" else 200
        assert response.status_code == expected, (path, response.text)
    registry = await client.post("/iclock/registry", params={"SN": "DATE1"}, content=b"~DeviceName=F22,MAC=00:01")
    assert registry.text.startswith("RegistryCode=")


async def test_attlog_batches_stored_once_with_stamps(daemon, client):
    await add_terminal(daemon, "PUSH2", tz="Europe/Rome")
    sim = PushTerminal("PUSH2", client, batch_size=100)
    await sim.handshake()
    for i in range(250):
        sim.punch(1000 + i % 13, day() + timedelta(minutes=i), status=i % 2, verify=15)
    assert await sim.upload_all() == 250
    assert [reply for _, reply in sim.uploads] == ["OK: 100", "OK: 100", "OK: 50"]
    rows = await stored(daemon.core, "PUSH2")
    assert len(rows) == 250
    first = rows[0]
    assert (first.enrollid, first.time, first.tz, first.inout, first.mode) == (1000, "2026-06-12 08:00:00",
                                                                             "Europe/Rome", 0, 15)
    assert first.utc == "2026-06-12T06:00:00Z" and first.connector == "push"

    # The reply was lost: the same batch comes again and is acknowledged again, stored once.
    again = await sim.post_rows(sim.log[200:])
    assert again.text == "OK: 50"
    assert len(await stored(daemon.core, "PUSH2")) == 250

    # A reboot: a fresh handshake hands back the stamp, so nothing already stored is sent again.
    rebooted = PushTerminal("PUSH2", client, log=list(sim.log))
    await rebooted.handshake()
    assert rebooted.options["ATTLOGStamp"] == rebooted.options["Stamp"] == str(sim.log[-1].stamp)
    assert rebooted.unsent() == []
    shown = (await client.get("/api/terminals/PUSH2", headers=daemon.auth)).json()
    assert shown["push"] == {"stamps": {"ATTLOG": str(sim.log[-1].stamp)}, "users": 0}
    rebooted.punch(1000, day(1))
    assert await rebooted.upload_all() == 1 and rebooted.uploads == [(1, "OK: 1")]

    # The API, the CSV export and the monitoring envelope are the other terminals'.
    listed = (await client.get("/api/attendance", params={"sn": "PUSH2", "limit": 2}, headers=daemon.auth)).json()
    assert listed["punches"][0]["sn"] == "PUSH2" and listed["punches"][0]["terminal_time"] == "2026-06-12 08:00:00"
    csv = (await client.get("/api/attendance", params={"sn": "PUSH2", "format": "csv"}, headers=daemon.auth)).text
    assert csv.count("\r\n") == 252 and ",push," in csv
    record = next(r for r in daemon.core.hub.recent if r.type == "attendance.punches")
    envelope = communications(record)[0]
    assert envelope.connector == "push" and envelope.dev_eui == "PUSH2" and envelope.comm_type == "comm_rx"


async def test_bad_rows_are_reported_and_good_rows_kept(daemon, client):
    await add_terminal(daemon, "BAD1")
    rows = [attlog_row(1, day()), "abc\t2026-06-12 08:01:00\t0\t1", attlog_row(2, day() + timedelta(minutes=2)),
            "3\t2026-02-30 08:00:00\t0\t1", "4", "\t".join(["5", "2026-06-12 08:05:00", "x"]),
            attlog_row(9999999999, day()), attlog_row(6, day() + timedelta(minutes=6))]
    body = "\r\n".join(rows).encode() + b"\r\n"
    response = await client.post("/iclock/cdata", params={"SN": "BAD1", "table": "ATTLOG", "Stamp": "7"}, content=body)
    first, second = response.text.split("\n")
    assert response.status_code == 200 and first == "OK: 3"
    assert second.startswith("REFUSED: 5 rows; line 2: PIN must be a number")
    assert "line 4: time is not a real date" in second and "line 7: PIN must be at most 4294967295" in second
    assert sorted(p.enrollid for p in await stored(daemon.core, "BAD1")) == [1, 2, 6]
    text = (await client.get("/metrics")).text
    assert "gatewayd_push_refused_rows_total 5" in text


async def test_pending_terminal_approved_later(daemon, client):
    sim = PushTerminal("NEWPUSH", client)
    assert (await sim.handshake()).status_code == 200  # a pending terminal gets its options: it may upload
    listed = (await client.get("/api/terminals", params={"status": "pending"}, headers=daemon.auth)).json()
    assert [(t["sn"], t["protocol"]) for t in listed] == [("NEWPUSH", "push")]
    for i in range(5):
        sim.punch(7, day() + timedelta(minutes=i))
    assert await sim.upload_all() == 5  # kept aside, durable, acknowledged
    assert await stored(daemon.core, "NEWPUSH") == [] and daemon.core.service("terminals").held_count("NEWPUSH") == 5
    assert await sim.poll() == []  # no commands for a pending terminal
    refused = await client.post("/api/terminals/NEWPUSH/commands", json={"command": "reboot"}, headers=daemon.auth)
    assert refused.status_code == 409

    await ops.call(daemon.core, "terminal.add", {"sn": "NEWPUSH", "tz": "Asia/Tokyo"})  # adding approves it
    rows = await stored(daemon.core, "NEWPUSH")
    assert len(rows) == 5 and {(p.connector, p.tz) for p in rows} == {("push", "Asia/Tokyo")}
    assert rows[0].utc == "2026-06-11T23:00:00Z"  # 08:00 in Tokyo
    assert daemon.core.state.terminals.get("NEWPUSH")["status"] == "accepted"
    sim.punch(7, day(1))
    assert await sim.upload_all() == 1 and len(await stored(daemon.core, "NEWPUSH")) == 6


async def test_rejected_terminal_is_refused(daemon, client):
    sim = PushTerminal("NOPE1", client)
    await sim.handshake()
    await ops.call(daemon.core, "terminal.reject", {"sn": "NOPE1"})
    assert (await sim.handshake()).status_code == 403
    sim.punch(1, day())
    assert await sim.upload_all() == 0 and sim.uploads[0][1].startswith("terminal NOPE1 was rejected")
    assert await stored(daemon.core, "NOPE1") == [] and daemon.core.state.attendance.held_count("NOPE1") == 0


async def test_operlog_users_with_fallback_encoding(daemon, client):
    await add_terminal(daemon, "USR1", encoding="gbk")
    sim = PushTerminal("USR1", client, encoding="gbk")
    await sim.handshake()
    sim.users = {1: {"pin": 1, "name": "张伟", "passwd": "8642"}, 2: {"pin": 2, "name": "Ann", "card": "123456"}}
    response = await sim.upload_users()
    assert response.text == "OK: 2"
    # Oplog, template and broken rows beside them: counted, not stored, the users kept.
    body = ("USER PIN=3\tName=Bob\tPri=14\n" "OPLOG 4\t0\t2026-06-12 08:00:00\t0\t0\t0\t0\n"
            "FP PIN=3\tFID=1\tSize=8\tValid=1\tTMP=QUJDRA==\n" "USER Name=nopin\n").encode()
    response = await client.post("/iclock/cdata", params={"SN": "USR1", "table": "OPERLOG", "OpStamp": "9"},
                                 content=body + "USER PIN=4\tName=\xff\xfe\x01\n".encode("latin-1"))
    assert response.text.startswith("OK: 4\nREFUSED: 1 rows; line 4: a USER row has no PIN=")
    users = (await client.get("/api/terminals/USR1/users", headers=daemon.auth)).json()["users"]
    by_pin = {u["enrollid"]: u for u in users}
    assert by_pin[1]["name"] == "张伟" and by_pin[1]["has_password"] is True and "8642" not in str(users)
    assert by_pin[2]["card"] == "123456" and by_pin[3]["pri"] == 14
    assert "\x01" not in by_pin[4]["name"]  # undecodable bytes never break the store
    assert daemon.core.state.push.stamps("USR1")["OPERLOG"] == "9"
    assert "8642" not in "".join(str(r) for r in records_of(daemon.core, "push.users"))


async def test_commands_round_trip(daemon, client):
    await add_terminal(daemon, "CMD1")
    sim = PushTerminal("CMD1", client)
    await sim.handshake()
    assert (await sim.upload_options()).text == "OK"
    terminal = daemon.core.state.terminals.get("CMD1")
    assert terminal["model"] == "SpeedFace-V5L" and terminal["devinfo"]["firmware"] == "ZAM180-NF-Ver1.0.4"

    async def queue(command: str, params: dict | None = None, status: int = 202) -> dict:
        response = await client.post("/api/terminals/CMD1/commands", headers=daemon.auth,
                                     json={"command": command, "params": params or {}})
        assert response.status_code == status, response.text
        return response.json()

    set_user = await queue("setuserinfo", {"enrollid": 1001, "name": "Ann", "admin": 1, "backupnum": 10,
                                           "record": "4321"})
    query = await queue("getuserinfo", {"enrollid": 1001})
    raw = await queue("raw", {"line": "DATA QUERY USERINFO PIN=1001"})
    unknown = await queue("raw", {"line": "USER ADD PIN=5"})
    commands = await sim.poll()
    assert [line for _, line in commands] == [
        "DATA UPDATE USERINFO PIN=1001\tName=Ann\tPri=6\tPasswd=4321\tGrp=1\tTZ=0000000000000000",
        "DATA QUERY USERINFO PIN=1001", "DATA QUERY USERINFO PIN=1001", "USER ADD PIN=5"]
    assert sim.users[1001]["passwd"] == "4321"
    states = {c["command_id"]: c for c in (await client.get("/api/terminals/CMD1/commands", headers=daemon.auth)).json()}
    assert states[set_user["command_id"]]["state"] == "acknowledged"
    assert states[query["command_id"]]["state"] == states[raw["command_id"]]["state"] == "acknowledged"
    assert states[unknown["command_id"]]["state"] == "failed"
    assert "Return=-1002 (syntax error)" in states[unknown["command_id"]]["error"]
    assert await sim.poll() == []  # nothing is sent twice
    # The password never reaches the journal, not even in the line shown to monitors.
    assert "4321" not in str(records_of(daemon.core, "terminal.command_sent"))
    assert "4321" not in str(records_of(daemon.core, "terminal.command_queued"))
    users = (await client.get("/api/terminals/CMD1/users", headers=daemon.auth)).json()["users"]
    assert [(u["enrollid"], u["name"], u["pri"]) for u in users] == [(1001, "Ann", 6)]

    # A tab or a newline in a field would break the command line: refused up front.
    for params in ({"enrollid": 1, "name": "A\tB"}, {"enrollid": 1, "name": "A\nB"}):
        refused = await queue("setuserinfo", params, status=422)
        assert "tab or a line break" in refused["message"]
    assert (await queue("raw", {"line": "REBOOT\nCLEAR LOG"}, status=422))["message"].endswith(
        "one raw command is one line (TABs separate its fields)")
    assert "Date header" in (await queue("settime", {"cloudtime": "2026-06-12 08:00:00"}, status=422))["message"]

    # INFO refreshes the device information; deleteuser removes the user from the list.
    sim.device_info["FWVersion"] = "ZAM180-NF-Ver1.0.5"
    sim.punch(1001, datetime(2026, 6, 15, 9, 0))
    sim.punch(1001, datetime(2026, 7, 15, 9, 0))
    info = await queue("info")
    delete = await queue("deleteuser", {"enrollid": 1001})
    log_query = await queue("getalllog", {"from": "2026-06-01", "to": "2026-06-30"})
    await sim.poll()
    assert sim.executed[-1] == "DATA QUERY ATTLOG StartTime=2026-06-01 00:00:00\tEndTime=2026-06-30 23:59:59"
    done = await ops.call(daemon.core, "terminal.commands", {"sn": "CMD1"})
    states = {c["command_id"]: c for c in done}
    assert states[info["command_id"]]["result"]["info"]["FWVersion"] == "ZAM180-NF-Ver1.0.5"
    assert daemon.core.state.terminals.get("CMD1")["devinfo"]["firmware"] == "ZAM180-NF-Ver1.0.5"
    assert states[delete["command_id"]]["state"] == states[log_query["command_id"]]["state"] == "acknowledged"
    assert (await client.get("/api/terminals/CMD1/users", headers=daemon.auth)).json()["users"] == []
    assert [p.time for p in await stored(daemon.core, "CMD1")] == ["2026-06-15 09:00:00"]  # the queried range only


async def test_waiting_command_and_monitor_tx(daemon, client):
    await add_terminal(daemon, "CMD2")
    sim = PushTerminal("CMD2", client)
    await sim.handshake()
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as other:
        async with trio.open_nursery() as nursery:
            result: dict = {}

            async def send_and_wait():
                response = await other.post("/api/terminals/CMD2/commands", headers=daemon.auth,
                                            json={"command": "reboot", "wait": 10})
                result["status"], result["body"] = response.status_code, response.json()

            nursery.start_soon(send_and_wait)
            with trio.fail_after(5):
                while not await sim.poll():
                    await trio.sleep(0.01)  # the terminal's poll interval, not a wait for a condition
    assert result["status"] == 200 and result["body"]["state"] == "acknowledged"
    assert sim.executed == ["REBOOT"]
    outcome = await submit_tx(daemon.core, '{"function":"TX","DevEui":"CMD2","Port":1,"Payload":"CHECK","Raw":true,'
                                           '"Reference":"ref-1","Confirm":true}')
    assert outcome.ok, outcome
    assert await sim.poll() == [(sim.results[-1].split("&")[0][3:], "CHECK")]
    sent = records_of(daemon.core, "terminal.command_sent")[-1]
    envelope = communications(next(r for r in reversed(daemon.core.hub.recent) if r.type == "terminal.command_sent"))[0]
    assert sent["line"] == "CHECK" and envelope.payload == b"CHECK" and envelope.connector == "push"


async def test_lost_result_is_sent_again_then_fails(daemon_sections, client, daemon):
    daemon.core.settings.terminals.command_timeout = 0.1
    await add_terminal(daemon, "CMD3")
    sim = PushTerminal("CMD3", client)
    await sim.handshake()
    queued = await ops.call(daemon.core, "terminal.command", {"sn": "CMD3", "command": "info"})
    path, params = sim.url("/iclock/getrequest")
    lines = []
    for _ in range(daemon.core.settings.terminals.command_tries):
        with trio.fail_after(5):
            while True:  # the terminal runs it but its result never arrives
                text = (await client.get(path, params=params)).text
                if text != "OK":
                    lines.append(text)
                    break
                await trio.sleep(0.05)
    assert lines == [f"C:{daemon.core.state.terminals.commands[queued['command_id']]['queued_seq']}:INFO\n"] * 3
    with trio.fail_after(5):
        while daemon.core.state.terminals.commands[queued["command_id"]]["state"] != "failed":
            await client.get(path, params=params)
            await trio.sleep(0.05)
    assert "no result after 3 tries" in daemon.core.state.terminals.commands[queued["command_id"]]["error"]


async def test_restart_keeps_stamps_users_and_punches(daemon, client):
    await add_terminal(daemon, "KEEP1")
    sim = PushTerminal("KEEP1", client)
    await sim.handshake()
    for i in range(20):
        sim.punch(5, day() + timedelta(minutes=i))
    await sim.upload_all()
    sim.users = {5: {"pin": 5, "name": "Eve"}}
    await sim.upload_users()
    await daemon.restart()
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as again:
        rebooted = PushTerminal("KEEP1", again, log=list(sim.log))
        await rebooted.handshake()
        assert rebooted.unsent() == [] and rebooted.options["OpStamp"] == "1"
        assert [u["name"] for u in (await again.get("/api/terminals/KEEP1/users", headers=daemon.auth)).json()["users"]] == ["Eve"]
    assert len(await stored(daemon.core, "KEEP1")) == 20


async def test_hostile_requests(daemon, client):
    await add_terminal(daemon, "HOST1")
    for params in ({"SN": "bad sn"}, {"SN": "A" * 65}, {"SN": "HOST1", "table": "AT;TLOG"},
                   {"SN": "HOST1", "table": "ATTLOG", "Stamp": "1 OR 1"}):
        response = await client.post("/iclock/cdata", params=params, content=b"1\t2026-06-12 08:00:00")
        assert response.status_code == 400, params
    photo = await client.post("/iclock/cdata", params={"SN": "HOST1", "table": "ATTPHOTO"},
                              content=b"PIN=1\nSN=HOST1\nsize=4\nCMD=uploadphoto\x00\xff\xd8\xff")
    assert photo.text == "OK: 1" and await stored(daemon.core, "HOST1") == []
    assert daemon.core.state.terminals.get("HOST1")["status"] == "accepted"
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as once:
        too_big = await once.post("/iclock/cdata", params={"SN": "HOST1", "table": "ATTLOG"},
                                  content=b"1" * (daemon.core.settings.server.max_body_bytes + 1))
    assert too_big.status_code == 413

"""WebSocket mode: terminals on the device socket, backlog pulls, commands, users, reconnects."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from ..conftest import wait_for
from .helpers import add_terminal, records_of, stored, stored_keys, wait_stored
from .termsim import SimTerminal, punches, quirky


@pytest.fixture
def daemon_sections():
    return {"terminals": {"command_timeout": 0.3}, "presence": {"sweep_interval": 0.05},
            "devices": {"register_timeout": 1.0}}


@pytest.fixture
async def client(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth, timeout=10) as c:
        yield c


def _commands(sim: SimTerminal) -> list[tuple]:
    return [(c["cmd"], c.get("stn")) for c in sim.received]


async def _state(daemon, command_id: str) -> str:
    return daemon.core.state.terminals.commands[command_id]["state"]


async def test_reg_then_backlog_pulled_page_by_page(daemon, nursery):
    await add_terminal(daemon, "WS1", tz="Europe/Rome")
    sim = SimTerminal("WS1", backlog=punches(10))
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await wait_stored(daemon.core, "WS1", 10)
    reg = sim.replies[0]
    assert reg["ret"] == "reg" and reg["result"] is True and reg["nosenduser"] is True
    assert _commands(sim) == [("getnewlog", True), ("getnewlog", False), ("getnewlog", False),
                              ("getnewlog", False)]  # 3 + 3 + 3 + 1 records, `to + 1 >= count` stops it
    terminal = daemon.core.state.terminals.get("WS1")
    assert terminal["online"] and terminal["connector"] == "terminal"
    assert {p.connector for p in await stored(daemon.core, "WS1")} == {"terminal"}


async def test_bare_path_and_requests_over_the_socket(daemon):
    await add_terminal(daemon, "WS2")
    sim = SimTerminal("WS2")
    async with open_websocket_url(daemon.ws_url + "/") as ws:
        await ws.send_message(json.dumps(sim.reg_body()))
        with trio.fail_after(5):
            assert json.loads(await ws.get_message())["result"] is True
            assert json.loads(await ws.get_message())["cmd"] == "getnewlog"
            await ws.send_message(quirky({"ret": "getnewlog", "result": True, "count": 0, "record": []}))
            body = sim.sendlog_body(punches(4))
            for _ in range(2):
                await ws.send_message(quirky(body))
                reply = json.loads(await ws.get_message())
                assert reply["ret"] == "sendlog" and reply["result"] and reply["logindex"] == body["logindex"]
            await ws.send_message(json.dumps({"cmd": "checklive", "sn": "WS2"}))
            assert json.loads(await ws.get_message())["ret"] == "checklive"
            await ws.send_message(json.dumps({"cmd": "checklive", "sn": "OTHER"}))
            assert "registered as WS2" in json.loads(await ws.get_message())["reason"]
            # A kind of message gatewayd does not know: answered result:false, the socket stays open.
            for _ in range(daemon.core.settings.devices.max_consecutive_errors + 1):
                await ws.send_message(json.dumps({"cmd": "getfuture", "sn": "WS2"}))
                reply = json.loads(await ws.get_message())
                assert (reply["ret"], reply["result"]) == ("getfuture", False) and "unknown cmd" in reply["reason"]
            await ws.send_message(json.dumps({"cmd": "checklive", "sn": "WS2"}))
            assert json.loads(await ws.get_message())["result"] is True
    unknown = await wait_for(lambda: records_of(daemon.core, "terminal.unknown_message"))
    assert unknown[0]["cmd"] == "getfuture" and unknown[0]["connector"] == "terminal" and unknown[0]["sn"] == "WS2"
    assert len(await stored(daemon.core, "WS2")) == 4
    await wait_for(lambda: not daemon.core.state.terminals.get("WS2")["online"])


async def test_commands_queue_while_offline_and_run_one_at_a_time(daemon, nursery, client):
    await add_terminal(daemon, "WS3")
    queued = []
    for command in ({"command": "gettime"}, {"command": "opendoor", "params": {"doornum": 1}}):
        response = await client.post("/api/terminals/WS3/commands", json=command)
        assert response.status_code == 202 and response.json()["state"] == "queued"
        queued.append(response.json()["command_id"])
    sim = SimTerminal("WS3", silent_for={"gettime"})
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await wait_for(lambda: daemon.core.state.terminals.commands[queued[1]]["state"] == "acknowledged", timeout=5)
    # gettime got no reply: sent three times, each time alone in flight, then opendoor
    assert [c for c, _ in _commands(sim)] == ["getnewlog", "gettime", "gettime", "gettime", "opendoor"]
    failed = daemon.core.state.terminals.commands[queued[0]]
    assert failed["state"] == "failed" and failed["tries"] == 3 and "after 3 tries" in failed["error"]
    listed = (await client.get("/api/terminals/WS3/commands")).json()
    assert [c["state"] for c in listed] == ["failed", "acknowledged"]
    sent = [r for r in records_of(daemon.core, "terminal.command_sent") if r["command_id"] == queued[0]]
    assert [r["try"] for r in sent] == [1, 2, 3]


async def test_refusal_wait_and_bad_commands(daemon, nursery, client):
    await add_terminal(daemon, "WS4")
    sim = SimTerminal("WS4")
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await wait_for(lambda: "WS4" in daemon.core.service("terminals").links)
    refused = await client.post("/api/terminals/WS4/commands",
                                json={"command": "deleteuser", "params": {"enrollid": 9, "backupnum": 0}, "wait": 5})
    assert refused.status_code == 200
    assert refused.json()["state"] == "failed" and refused.json()["error"] == "the terminal refused: no such user"
    done = await client.post("/api/terminals/WS4/commands", json={"command": "gettime", "wait": 5})
    assert done.json()["state"] == "acknowledged" and done.json()["result"]["time"] == "2026-06-12 10:00:00"
    for body, words in (({"command": "launch"}, "unknown terminal command"),
                        ({"command": "opendoor", "params": {"doornum": 9}}, "between 1 and 4"),
                        ({"command": "getuserinfo", "params": {"enrollid": 1}}, "needs 'backupnum'"),
                        ({"command": "gettime", "wait": -1}, "wait must be")):
        response = await client.post("/api/terminals/WS4/commands", json=body)
        assert response.status_code == 422 and words in response.json()["message"], response.json()
    assert (await client.post("/api/terminals/NONE/commands", json={"command": "gettime"})).status_code == 404


async def test_users_list_and_set(daemon, nursery, client):
    await add_terminal(daemon, "WS5")
    sim = SimTerminal("WS5", users={i: {"name": f"user {i}", "backupnum": 0, "admin": 0, "record": "x"}
                                    for i in range(1, 8)})
    assert (await client.get("/api/terminals/WS5/users")).json()["users"] == []  # nothing known yet
    assert (await client.get("/api/terminals/WS5/users?refresh=1")).status_code == 409  # not connected yet
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await wait_for(lambda: "WS5" in daemon.core.service("terminals").links)
    users = (await client.get("/api/terminals/WS5/users?refresh=1")).json()
    assert [u["enrollid"] for u in users["users"]] == list(range(1, 8)) and users["pages"] == 4
    put = await client.put("/api/terminals/WS5/users/42",
                           json={"name": "Ada", "backupnum": 10, "admin": 1, "record": 123456})
    assert put.status_code == 200 and put.json()["state"] == "acknowledged"
    assert sim.users[42] == {"name": "Ada", "backupnum": 10, "admin": 1, "record": 123456}
    text = "".join(p.read_text() for p in (daemon.state_dir / "journal").glob("segment-*.jsonl"))
    assert '"record":"***"' in text and "123456" not in text  # a password never reaches the journal
    bad = await client.put("/api/terminals/WS5/users/42", json={"name": "Ada", "backupnum": 10, "record": "abc"})
    assert bad.status_code == 422


async def test_reconnect_after_restart_pulls_the_backlog_once(daemon, nursery):
    await add_terminal(daemon, "WS6")
    sim = SimTerminal("WS6", backlog=punches(4))
    closed: list = []
    nursery.start_soon(lambda: sim.run_ws(daemon.ws_url + "/ws", closed=closed))
    await wait_stored(daemon.core, "WS6", 4)
    await daemon.restart()
    await wait_for(lambda: closed == [1001])
    assert daemon.core.state.terminals.get("WS6")["online"] is False
    # punched while the server was away; the firmware also offers two old ones again
    sim.backlog = punches(4)[2:] + punches(5, start=datetime(2026, 6, 13, 8, 0))
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await wait_stored(daemon.core, "WS6", 9)
    await wait_for(lambda: sim.backlog == [])
    keys = await stored_keys(daemon.core, "WS6")
    assert len(keys) == len(set(keys)) == 9


async def test_pending_terminal_on_the_socket_is_served_once_approved(daemon, nursery, client):
    sim = SimTerminal("WS7", backlog=punches(2, start=datetime(2026, 6, 14, 8, 0)))
    async with open_websocket_url(daemon.ws_url + "/ws") as ws:
        await ws.send_message(json.dumps(sim.reg_body()))
        with trio.fail_after(5):
            assert "approval" in json.loads(await ws.get_message())["reason"]
            await ws.send_message(json.dumps(sim.sendlog_body(punches(3))))
            assert "3 records are kept" in json.loads(await ws.get_message())["reason"]
            assert (await client.post("/api/terminals/WS7/approve")).json()["held_records"] == 0
            request = json.loads(await ws.get_message())
            assert request == {"cmd": "getnewlog", "stn": True}
            await ws.send_message(json.dumps({"ret": "getnewlog", "result": True, "count": 2, "from": 0, "to": 1,
                                              "record": sim.backlog}))
            await wait_stored(daemon.core, "WS7", 5)
    assert daemon.core.state.terminals.get("WS7")["status"] == "accepted"


async def test_a_new_connection_supersedes_the_old_one(daemon, nursery):
    await add_terminal(daemon, "WS8")
    first, second = SimTerminal("WS8"), SimTerminal("WS8")
    closed: list = []
    nursery.start_soon(lambda: first.run_ws(daemon.ws_url + "/ws", closed=closed))
    await wait_for(lambda: "WS8" in daemon.core.service("terminals").links)
    link = daemon.core.service("terminals").links["WS8"]
    nursery.start_soon(second.run_ws, daemon.ws_url + "/ws")
    await wait_for(lambda: closed == [4002])
    assert daemon.core.service("terminals").links["WS8"] is not link
    assert daemon.core.state.terminals.get("WS8")["online"] is True


async def test_bad_frames_and_registration_rules(daemon):
    await add_terminal(daemon, "WS9")
    async with open_websocket_url(daemon.ws_url + "/") as ws:
        await ws.send_message(json.dumps({"cmd": "checklive", "sn": "WS9"}))
        with trio.fail_after(5):
            assert json.loads(await ws.get_message())["reason"] == "send reg first"
            try:  # no reg within devices.register_timeout
                while True:
                    await ws.get_message()
            except ConnectionClosed as exc:
                assert exc.reason.code == 4008
    async with open_websocket_url(daemon.ws_url + "/ws") as ws:
        await ws.send_message(json.dumps(SimTerminal("WS9").reg_body()))
        with trio.fail_after(5):
            await ws.get_message()  # reg reply
            codes = []
            for _ in range(daemon.core.settings.devices.max_consecutive_errors):
                await ws.send_message('{"cmd": "sendlog", "sn": "WS9", "record": [{"enrollid": 1}]}')
            try:
                while True:
                    message = json.loads(await ws.get_message())
                    if message.get("result") is False:
                        codes.append(message["reason"].split(":")[0])
            except ConnectionClosed as exc:
                assert exc.reason.code == 4000
            assert set(codes) == {"invalid"}


async def test_unknown_terminal_on_bare_path_only_terminals(daemon):
    async with open_websocket_url(daemon.ws_url + "/") as ws:
        await ws.send_message(json.dumps({"type": "register", "device_id": "x", "token": "y"}))
        with trio.fail_after(5):
            try:
                while True:
                    await ws.get_message()
            except ConnectionClosed as exc:
                assert exc.reason.code == 4000


async def test_queued_command_expires_while_offline(daemon, client):
    await add_terminal(daemon, "WS10")
    queued = (await client.post("/api/terminals/WS10/commands", json={"command": "reboot", "expires_in": 0.2})).json()
    await wait_for(lambda: daemon.core.state.terminals.commands[queued["command_id"]]["state"] == "expired", timeout=5)


async def test_paged_commands_from_an_operator(daemon, nursery, client):
    await add_terminal(daemon, "WS11")
    sim = SimTerminal("WS11", users={1: {"name": "a", "backupnum": 0, "admin": 0, "record": "x"},
                                     2: {"name": "b", "backupnum": 11, "admin": 0, "record": 42}})
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await wait_for(lambda: "WS11" in daemon.core.service("terminals").links)
    # The reg's own backlog pull must be over, or it would take the punches this test adds.
    await wait_for(lambda: any(r.type == "terminal.backlog_pulled" and r.data["sn"] == "WS11"
                               for r in daemon.core.hub.recent))
    sim.backlog = punches(5, start=datetime(2026, 6, 20, 8, 0))  # punched since the reg's pull
    pulled = (await client.post("/api/terminals/WS11/commands", json={"command": "getnewlog", "wait": 5})).json()
    assert pulled["state"] == "acknowledged"
    assert pulled["result"] == {"pages": 2, "received": 5, "stored": 5}
    assert len(await stored(daemon.core, "WS11")) == 5
    listed = (await client.post("/api/terminals/WS11/commands", json={"command": "getuserlist", "wait": 5})).json()
    assert [u["enrollid"] for u in listed["result"]["users"]] == [1, 2]
    sim.silent_for = {"getuserlist"}
    timed_out = await client.get("/api/terminals/WS11/users?refresh=1")
    assert timed_out.status_code == 504 and "after 3 tries" in timed_out.json()["message"]

"""The terminal's user list: `senduser` (HTTP and WebSocket), `getuserlist` in both paging dialects,
commands that change users, the monitoring streams, and a restart replaying it all."""

from __future__ import annotations

import json

import httpx
import pytest

from gatewayd.connectors.terminals import command_codec as tc
from gatewayd.connectors.terminals import user_codec, users
from gatewayd.connectors.terminals.users_state import TerminalUsersState
from gatewayd.journal.record import Record

from ..conftest import wait_for
from ..monitor.helpers import frames_until, open_monitor
from .helpers import add_terminal
from .termsim import SimTerminal, quirky

TEMPLATE = "c51a6b00d9860af9ff3e19c769889355d08fa7c958877bc1d80bb8c36b8963d2"


@pytest.fixture
def daemon_sections():
    return {"terminals": {"command_timeout": 0.3, "senduser": True}, "presence": {"sweep_interval": 0.05}}


def _journal_text(daemon) -> str:
    return "".join(p.read_text() for p in (daemon.state_dir / "journal").glob("segment-*.jsonl"))


def _senduser(sn: str, enrollid: int, backupnum: int, record, name: str = "Ann", admin: int = 0) -> dict:
    return {"cmd": "senduser", "sn": sn, "enrollid": enrollid, "name": name, "backupnum": backupnum,
            "admin": admin, "record": record}


# -- codec -------------------------------------------------------------------------------------------
def test_getuserlist_rows_merge_per_user_and_skip_odd_rows():
    rows = [{"enrollid": 1, "admin": "0", "backupnum": 0}, {"enrollid": "1", "backupnum": 11},
            {"enrollid": 2, "admin": 1, "backupnum": 10, "name": " Bob "}, {"enrollid": 0}, "junk",
            {"enrollid": 3, "admin": 9, "backupnum": "x"}]
    assert user_codec.users_in_rows(rows) == [
        {"enrollid": 1, "admin": 0, "credentials": [0, 11]},
        {"enrollid": 2, "admin": 1, "name": "Bob", "credentials": [10]},
        {"enrollid": 3, "credentials": []}]
    with pytest.raises(Exception, match="must be a list"):
        user_codec.users_in_rows({"enrollid": 1})


def test_numbered_pages_stop_on_a_short_page_or_the_whole_count():
    def reply(n, **fields):
        return tc.TerminalReply("getuserlist", True, {"record": [{}] * n, **fields})

    assert not tc.page_done(reply(3, page=1, pagesize=3, count=7), 1, 100)
    assert tc.page_done(reply(1, page=3, pagesize=3, count=7), 3, 100)
    assert tc.page_done(reply(3, page=2, pagesize=3, count=6), 2, 100)
    assert not tc.page_done(reply(3, page=1, pagesize=3, count=3), 1, 100)  # count of the page only
    assert tc.page_done(reply(3, page=1, pagesize="three"), 1, 100)


def test_changes_from_acknowledged_commands_fold_into_the_list():
    state = TerminalUsersState()
    seq = iter(range(1, 100))

    def apply(changes):
        state._users(Record(next(seq), "2026-06-12T10:00:00.000000Z", "terminal.users", {"sn": "S", **changes}))

    apply({"source": "getuserlist", "users": [{"enrollid": 1, "admin": 1, "credentials": [0, 1, 11]},
                                              {"enrollid": 2, "admin": 0, "credentials": [0]}],
           "replace": True, "complete": True})
    apply(users.changes_from("setuserinfo", {"enrollid": 2, "name": "Bo", "admin": 0, "backupnum": 10,
                                             "record": "***"}, {}))
    apply(users.changes_from("setusername", {"count": 1, "record": [{"enrollid": 1, "name": "Al"}]}, {}))
    apply(users.changes_from("enableuser", {"enrollid": 1, "enable": 0}, {}))
    apply(users.changes_from("deleteuser", {"enrollid": 1, "backupnum": 12}, {}))
    apply(users.changes_from("cleanadmin", {}, {}))
    listed = {u["enrollid"]: (u["name"], u["admin"], u["credentials"], u["enabled"]) for u in state.users("S")}
    assert listed == {1: ("Al", 0, [11], False), 2: ("Bo", 0, [0, 10], None)}
    apply(users.changes_from("deleteuser", {"enrollid": 2, "backupnum": 13}, {}))
    assert [u["enrollid"] for u in state.users("S")] == [1]
    apply(users.changes_from("cleanuser", {}, {}))
    assert state.users("S") == [] and state.get("S")["listed"] is not None


# -- end to end ----------------------------------------------------------------------------------------
async def test_senduser_over_http_is_stored_streamed_and_replayed(daemon, client, operator):
    await add_terminal(daemon, "USR1")
    async with open_monitor(daemon) as monitor:
        reply = (await client.post("/api/device-http", content=json.dumps(_senduser("USR1", 7, 0, TEMPLATE)))).json()
        assert reply["ret"] == "senduser" and reply["result"] is True and reply["cloudtime"]
        card = _senduser("USR1", 7, 11, 2352253, name="Ann B")
        assert (await client.post("/api/device-http", content=quirky(card))).json()["result"] is True
        frames = await frames_until(monitor, lambda f: f.get("Extra", {}).get("backupnum") == "11")
    rx = [f for f in frames if f["CommType"] == "comm_rx" and f["Extra"].get("type") == "senduser"]
    assert [f["Extra"]["enrollid"] for f in rx] == ["7", "7"] and rx[0]["Connector"] == b"http".hex()
    assert json.loads(bytes.fromhex(rx[0]["Payload"])) == {"enrollid": 7, "admin": 0, "credentials": [0],
                                                          "name": "Ann", "backupnum": 0}
    assert rx[0]["Extra"]["name"] == "Ann" and rx[0]["Extra"]["credential_chars"] == str(len(TEMPLATE))
    listed = (await operator.get("/api/terminals/USR1/users")).json()
    (user,) = listed["users"]
    assert (user["enrollid"], user["name"], user["credentials"], user["source"]) == (7, "Ann B", [0, 11], "senduser")
    assert user["credential_kinds"] == ["fingerprint 0", "card"] and listed["listed"] is None
    text = _journal_text(daemon)
    assert TEMPLATE not in text and "2352253" not in text  # credentials are not kept
    refused = (await client.post("/api/device-http", content=json.dumps(_senduser("USR1", 0, 0, "x")))).json()
    assert refused["result"] is False and "senduser.enrollid" in refused["reason"]
    pending = (await client.post("/api/device-http", content=json.dumps(_senduser("NEW1", 1, 0, "x")))).json()
    assert pending["result"] is False and "waiting" in pending["reason"]
    await daemon.restart()
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as again:
        replayed = (await again.get("/api/terminals/USR1/users")).json()["users"]
    assert [(u["enrollid"], u["name"], u["credentials"]) for u in replayed] == [(7, "Ann B", [0, 11])]


async def test_senduser_over_websocket_and_a_numbered_listing_replacing_the_list(daemon, nursery, operator):
    await add_terminal(daemon, "USR2")
    sim = SimTerminal("USR2", user_pages="page", users={
        i: {"name": f"user {i}", "backupnum": 0, "admin": 0, "record": "x"} for i in range(1, 8)})
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await wait_for(lambda: "USR2" in daemon.core.service("terminals").links and sim.ws is not None and sim.replies)
    assert sim.replies[0]["ret"] == "reg" and sim.replies[0]["nosenduser"] is False  # terminals.senduser = true
    await sim.ws.send_message(quirky({**_senduser("USR2", 42, 10, 12345678, name="Eve"), "admin": 1}))
    await wait_for(lambda: any(r.get("ret") == "senduser" for r in sim.replies))
    (answer,) = [r for r in sim.replies if r.get("ret") == "senduser"]
    assert answer["result"] is True and answer["cloudtime"]
    known = (await operator.get("/api/terminals/USR2/users")).json()["users"]
    assert [(u["enrollid"], u["admin"], u["credentials"]) for u in known] == [(42, 1, [10])]
    assert "12345678" not in _journal_text(daemon)
    listed = (await operator.get("/api/terminals/USR2/users", params={"refresh": "1"})).json()
    assert listed["pages"] == 3  # 3 + 3 + 1: the short page is the last
    assert [getuserlist["stn"] for getuserlist in sim.received if getuserlist["cmd"] == "getuserlist"] == [
        True, False, False]
    assert [u["enrollid"] for u in listed["users"]] == list(range(1, 8))  # 42 is not on the terminal: gone
    assert listed["users"][0]["name"] == "user 1" and listed["listed"] is not None
    assert (await operator.get("/api/terminals/USR2/users", params={"refresh": "maybe"})).status_code == 422
    deleted = await operator.post("/api/terminals/USR2/commands", json={
        "command": "deleteuser", "params": {"enrollid": 3, "backupnum": 13}, "wait": 5})
    assert deleted.json()["state"] == "acknowledged"
    await wait_for(lambda: 3 not in [u["enrollid"] for u in daemon.core.state.terminal_users.users("USR2")])
    async with open_monitor(daemon, "actions", since=0) as actions:
        frames = await frames_until(actions, lambda f: f["ActionType"] == "terminal_users_updated"
                                    and f["Details"].get("source") == "deleteuser")
    assert any(f["ActionType"] == "terminal_users_updated" and f["Details"].get("complete") for f in frames)
    shown = (await operator.get("/api/terminals/USR2/users")).json()["users"]
    assert [u["enrollid"] for u in shown] == [1, 2, 4, 5, 6, 7]

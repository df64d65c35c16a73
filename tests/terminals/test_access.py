"""Door decisions in sendlog replies: the per-terminal access rule (none by default), set over REST
and the command line, journaled, applied to live punches, recorded on the actions stream."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest

from gatewayd.connectors.terminals import access
from gatewayd.connectors.terminals.punches import parse_punch
from gatewayd.ops import OpError

from ..conftest import run_cli
from ..monitor.helpers import frames_until, open_monitor
from .helpers import add_terminal

ROME = ZoneInfo("Europe/Rome")


def _punch(enrollid: int, minutes_ago: float = 0.0, tz=ROME) -> dict:
    at = datetime.now(timezone.utc).astimezone(tz) - timedelta(minutes=minutes_ago)
    return {"enrollid": enrollid, "time": at.strftime("%Y-%m-%d %H:%M:%S"), "mode": 1, "inout": 0, "event": 0}


def _sendlog(sn: str, *records: dict) -> str:
    return json.dumps({"cmd": "sendlog", "sn": sn, "count": len(records), "logindex": 1, "record": list(records)})


@pytest.mark.parametrize("rule, words", [
    ({"mode": "sometimes"}, "mode must be one of"),
    ({"mode": "enrollids"}, "enrollids must be a list"),
    ({"mode": "enrollids", "enrollids": ["9-3"]}, "neither an id nor a range"),
    ({"mode": "open", "enrollids": [1]}, "only goes with mode enrollids"),
    ({"mode": "open", "message": "a\nb"}, "message must be text"),
    ({"mode": "open", "max_age": -1}, "max_age must be"),
    ({"mode": "open", "door": 1}, "unknown field 'door'"),
    ([1], "must be an object"),
])
def test_rules_are_checked(rule, words):
    with pytest.raises(OpError) as caught:
        access.check_rule(rule)
    assert caught.value.status == 422 and words in caught.value.message


def test_decisions():
    punch = parse_punch(_punch(12), "r")
    door = parse_punch({**_punch(0), "event": 1}, "r")
    rule = access.check_rule({"mode": "enrollids", "enrollids": [3, " 10 - 20 "], "message": "Hi {name} ({enrollid})",
                              "denied_message": "No"})
    assert rule == {"mode": "enrollids", "enrollids": [3, "10-20"], "message": "Hi {name} ({enrollid})",
                    "denied_message": "No", "max_age": 120}
    decided = access.decide(rule, [door, punch, door], {"name": "Ann"}, 5.0)
    assert (decided.access, decided.message, decided.enrollid) == (1, "Hi Ann (12)", 12)
    assert access.decide(rule, [punch], None, 121.0).reason == "too old"
    assert access.decide(rule, [door], None, 0.0) is None
    listed = access.check_rule({"mode": "listed"})
    assert access.decide(listed, [punch], {"enabled": False}, 1.0).reason == "disabled"
    assert access.decide(listed, [punch], None, 1.0).access == 0
    assert access.decide({**listed, "max_age": 0}, [punch], {"enabled": None}, 10**6).access == 1
    assert access.check_rule("none") is None and access.check_rule("") is None
    assert access.decide_code(listed, "GUEST-42", None).reason == "not an enrollid"
    assert access.decide_code(rule, "15", {"name": "Bo"}).message == "Hi Bo (15)"
    assert access.decide_code(access.check_rule({"mode": "open"}), "GUEST-42", None).access == 1
    assert access.decide_code(None, "15", None) is None


async def test_sendlog_replies_follow_the_terminal_rule(daemon, client, operator):
    await add_terminal(daemon, "DOOR1", tz="Europe/Rome")
    plain = (await client.post("/api/device-http", content=_sendlog("DOOR1", _punch(7)))).json()
    assert plain["result"] is True and "access" not in plain and "message" not in plain  # no rule: as before
    rule = {"mode": "listed", "message": "Welcome {name}", "denied_message": "Ask at the desk"}
    patched = await operator.patch("/api/terminals/DOOR1", json={"access": rule})
    assert patched.status_code == 200 and patched.json()["access"] == {**rule, "max_age": 120}
    await client.post("/api/device-http", content=json.dumps({"cmd": "senduser", "sn": "DOOR1", "enrollid": 7,
                                                              "name": "Ann", "backupnum": 0, "record": "x"}))
    async with open_monitor(daemon, "actions") as actions:
        opened = (await client.post("/api/device-http", content=_sendlog("DOOR1", _punch(7, 0.1)))).json()
        assert (opened["access"], opened["message"]) == (1, "Welcome Ann")
        shut = (await client.post("/api/device-http", content=_sendlog("DOOR1", _punch(8, 0.2)))).json()
        assert (shut["access"], shut["message"]) == (0, "Ask at the desk")
        frames = await frames_until(actions, lambda f: f["ActionType"] == "terminal_access"
                                    and f["Details"]["enrollid"] == 8)
    decisions = [(f["Details"]["enrollid"], f["Details"]["access"], f["Details"]["reason"])
                 for f in frames if f["ActionType"] == "terminal_access"]
    assert decisions == [(7, 1, "listed"), (8, 0, "not listed")]
    qr = {"cmd": "sendqrcode", "sn": "DOOR1"}
    known = (await client.post("/api/device-http", content=json.dumps({**qr, "record": "7"}))).json()
    assert (known["access"], known["enrollid"], known["username"], known["message"]) == (1, 7, "Ann", "Welcome Ann")
    guest = (await client.post("/api/device-http", content=json.dumps({**qr, "record": "GUEST-42"}))).json()
    assert (guest["access"], guest["message"]) == (0, "Ask at the desk") and "enrollid" not in guest
    stale = (await client.post("/api/device-http", content=_sendlog("DOOR1", _punch(7, 30)))).json()
    assert stale["access"] == 0 and stale["result"] is True  # stored, but an old punch opens nothing
    doors = (await client.post("/api/device-http", content=_sendlog("DOOR1", {**_punch(0), "event": 1}))).json()
    assert "access" not in doors
    bad = await operator.patch("/api/terminals/DOOR1", json={"access": {"mode": "maybe"}})
    assert bad.status_code == 422 and "access: mode" in bad.json()["message"]
    await daemon.restart()
    assert daemon.core.state.terminals.get("DOOR1")["access"]["mode"] == "listed"  # journaled, replayed
    await daemon.stop()
    state = str(daemon.state_dir)
    cleared = run_cli("terminal", "update", "DOOR1", "--access", "none", "--state-dir", state, "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["access"] is None
    opened = run_cli("terminal", "update", "DOOR1", "--access", '{"mode":"enrollids","enrollids":["1-9"]}',
                     "--state-dir", state, "--json")
    assert json.loads(opened.stdout)["access"]["enrollids"] == ["1-9"]
    refused = run_cli("terminal", "update", "DOOR1", "--access", "{nope", "--state-dir", state)
    assert refused.returncode != 0 and "not JSON" in refused.stderr
    await daemon.start()
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as again:
        reply = (await again.post("/api/device-http", content=_sendlog("DOOR1", _punch(5)))).json()
    assert reply["access"] == 1 and "message" not in reply


"""Server-to-terminal commands beyond the basic set, end to end over a terminal's WebSocket: user
names, device and access parameters, holidays, the questionnaire, destructive commands (which need
`confirm_destructive`) and raw frames, from the REST API and as TX requests on the monitor socket."""

from __future__ import annotations

import json

import pytest

from ..conftest import wait_for
from ..monitor.helpers import frames_until, open_monitor, send_frame
from .helpers import add_terminal, records_of
from .termsim import SimTerminal

ROUND_TRIPS = [  # (command, params, what the terminal receives besides cmd, result fields checked)
    ("getusername", {"enrollid": 1}, {"enrollid": 1}, {"record": "Ann"}),
    ("setusername", {"record": [{"enrollid": 1, "name": "Anna"}, {"enrollid": 9, "name": "Zoe"}]},
     {"count": 2, "record": [{"enrollid": 1, "name": "Anna"}, {"enrollid": 9, "name": "Zoe"}]}, {}),
    ("setdevinfo", {"volume": 8, "sleep": True}, {"volume": 8, "sleep": True}, {}),
    ("setdevlock", {"opendelay": 5, "dayzone": [{"day": [{"section": "07:00~18:00"}]}],
                    "weekzone": [{"week": [{"day": 1}]}]},
     {"opendelay": 5, "dayzone": [{"day": [{"section": "07:00~18:00"}]}], "weekzone": [{"week": [{"day": 1}]}]}, {}),
    ("getdevlock", {}, {}, {}),
    ("getuserlock", {"enrollid": 1}, {"enrollid": 1}, {"weekzone": 1, "group": 1}),
    ("setuserlock", {"record": [{"enrollid": 1, "weekzone": 2}]}, {"count": 1, "record": [{"enrollid": 1, "weekzone": 2}]},
     {}),
    ("deleteuserlock", {"enrollid": 1}, {"enrollid": 1}, {}),
    ("getholiday", {}, {"stn": True}, {"holidays": [{"name": "holiday1", "startday": "01-01", "endday": "01-01",
                                                     "shift": 0, "dayzone": 0}]}),
    ("setholiday", {"holidays": [{"name": "May Day", "startday": "05-01", "endday": "05-01"}]},
     {"holidays": [{"name": "May Day", "startday": "05-01", "endday": "05-01"}]}, {}),
    ("getquestionnaire", {}, {"stn": True}, {}),
    ("setquestionnaire", {"title": "why", "items": ["in", "out"], "radio": True},
     {"title": "why", "items": ["in", "out"], "radio": True}, {}),
    ("raw", {"cmd": "setlogo", "image": "aGk="}, {"image": "aGk="}, {}),
]
DESTRUCTIVE = ["cleanuserlock", "cleanadmin", "cleanlog", "cleanuser", "initsys"]


@pytest.fixture
def daemon_sections():
    return {"terminals": {"command_timeout": 0.5}, "presence": {"sweep_interval": 0.05}}


async def _connected(daemon, nursery, sn: str) -> SimTerminal:
    await add_terminal(daemon, sn)
    sim = SimTerminal(sn, users={1: {"name": "Ann", "backupnum": 0, "admin": 1, "record": "x"}})
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await wait_for(lambda: any(r.type == "terminal.backlog_pulled" and r.data["sn"] == sn
                               for r in daemon.core.hub.recent))
    return sim


async def test_every_command_round_trips_from_the_rest_api(daemon, nursery, operator):
    sim = await _connected(daemon, nursery, "CMDX")
    for command, params, received, result in ROUND_TRIPS:
        done = (await operator.post("/api/terminals/CMDX/commands",
                                    json={"command": command, "params": params, "wait": 5})).json()
        assert done["state"] == "acknowledged", (command, done)
        wire = {"cmd": params["cmd"] if command == "raw" else command, **received}
        assert sim.received[-1] == wire, command
        assert {k: done["result"][k] for k in result} == result, command
    assert sim.users[9]["name"] == "Zoe"
    names = {u["enrollid"]: u["name"] for u in daemon.core.state.terminal_users.users("CMDX")}
    assert names == {1: "Anna", 9: "Zoe"}  # getusername, then setusername, on the user list
    for command in DESTRUCTIVE:
        refused = await operator.post("/api/terminals/CMDX/commands", json={"command": command})
        assert refused.status_code == 422 and "confirm_destructive" in refused.json()["message"], command
        done = (await operator.post("/api/terminals/CMDX/commands", json={
            "command": command, "confirm_destructive": True, "confirm": True, "reference": f"r-{command}",
            "wait": 5})).json()
        assert done["state"] == "acknowledged" and sim.received[-1] == {"cmd": command}, command
    queued = [r for r in records_of(daemon.core, "terminal.command_queued") if r["command"] in DESTRUCTIVE]
    assert len(queued) == 5 and all(r["confirmed_destructive"] and r["confirm"] for r in queued)
    assert daemon.core.state.terminal_users.users("CMDX") == []  # cleanuser emptied the list
    bad = await operator.post("/api/terminals/CMDX/commands", json={"command": "setdevinfo", "params": {"volume": 99}})
    assert bad.status_code == 422 and "setdevinfo.volume" in bad.json()["message"]
    odd = await operator.post("/api/terminals/CMDX/commands", json={"command": "cleanuser", "confirm_destructive": 1})
    assert odd.status_code == 422


async def test_tx_requests_on_the_monitor_socket(daemon, nursery):
    sim = await _connected(daemon, nursery, "CMDY")

    def tx(frame: dict, reference: str) -> dict:
        return {"function": "TX", "DevEui": "CMDY", "Port": 1, "Payload": json.dumps(frame), "Raw": True,
                "Confirm": True, "Reference": reference}

    async with open_monitor(daemon) as monitor:
        await send_frame(monitor, tx({"cmd": "cleanuser"}, "t1"))
        (reply,) = [f for f in await frames_until(monitor, lambda f: "Result" in f)]
        assert reply["Result"] == "Fail" and "confirm_destructive" in reply["Details"]
        await send_frame(monitor, tx({"cmd": "getuserlock", "enrollid": 1}, "t2"))
        await send_frame(monitor, tx({"cmd": "raw", "frame": {"cmd": "setlogo", "image": "aGk="}}, "t3"))
        await send_frame(monitor, tx({"cmd": "initsys", "confirm_destructive": True}, "t4"))
        frames = await frames_until(monitor, lambda f: f.get("CommType") == "comm_txconfirm" and f["Reference"] == "t4",
                                    timeout=10)
    assert [f["Result"] for f in frames if "Result" in f] == ["Success"] * 3
    sent = {f["Reference"]: f for f in frames if f.get("CommType") == "comm_tx"}
    assert sent["t2"]["Command"] == "getuserlock" and sent["t3"]["Command"] == "raw"
    assert json.loads(bytes.fromhex(sent["t3"]["Payload"])) == {"cmd": "setlogo", "image": "aGk="}
    assert {f["Reference"] for f in frames if f.get("CommType") == "comm_txconfirm"} == {"t2", "t3", "t4"}
    assert [c["cmd"] for c in sim.received[-3:]] == ["getuserlock", "setlogo", "initsys"]

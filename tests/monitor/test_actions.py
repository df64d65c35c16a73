"""The actions stream: the core's own records as actions (literal frames), and end to end: device
created, token rotated, failed logins and bad device tokens, with `since` and filters."""

from __future__ import annotations

import re
from datetime import timedelta, timezone

import httpx
import pytest

from gatewayd.journal.record import Record
from gatewayd.connectors.monitor.resiot import action_to_frame
from gatewayd.gateway import comm_tables

from .helpers import next_frame, open_monitor

comms = comm_tables()

TS = "2026-11-22T03:04:05.123456Z"
PLUS1 = timezone(timedelta(hours=1))
DT = "2026-11-22T04:04:05.1234560+01:00"


def frame_of(type_: str, data: dict) -> dict:
    action = comms.action(Record(41, TS, type_, data))
    return action_to_frame(action, PLUS1)


def expected(action_type: str, actor: str, target: str, details: dict) -> dict:
    return {"ActionType": action_type, "Actor": actor, "Target": target, "Details": details, "DT": DT, "Seq": 41}


CORE_CASES = [
    ("admin.password_set", {"hash": "scrypt$secret", "generated": True},
     expected("admin_password_set", "gatewayd", "admin", {"generated": True})),
    ("admin.password_set", {"hash": "scrypt$secret", "generated": False, "actor": "cli"},
     expected("admin_password_set", "cli", "admin", {"generated": False})),
    ("apikey.created", {"key_id": "ab12cd34", "name": "scada", "hash": "sha256:secret"},
     expected("apikey_created", "operator", "ab12cd34", {"key_id": "ab12cd34", "name": "scada"})),
    ("apikey.revoked", {"key_id": "ab12cd34"},
     expected("apikey_revoked", "operator", "ab12cd34", {"key_id": "ab12cd34"})),
    ("auth.failed", {"kind": "apikey", "source": "10.0.0.9", "subject": "gwk_ab12cd34"},
     expected("auth_failed", "10.0.0.9", "gwk_ab12cd34", {"kind": "apikey", "source": "10.0.0.9"})),
    ("auth.failed", {"kind": "apikey", "source": "10.0.0.9", "subject": "hunter2hunte"},
     expected("auth_failed", "10.0.0.9", "", {"kind": "apikey", "source": "10.0.0.9"})),
    ("auth.failed", {"kind": "login", "source": "10.0.0.9", "subject": "admin"},
     expected("auth_failed", "10.0.0.9", "admin", {"kind": "login", "source": "10.0.0.9"})),
    ("auth.failed", {"kind": "device_token", "source": "10.0.0.7", "subject": "dev-1"},
     expected("auth_failed", "10.0.0.7", "dev-1", {"kind": "device_token", "source": "10.0.0.7"})),
    ("auth.login", {"user": "admin", "source": "10.0.0.9"},
     expected("auth_login", "admin", "admin", {"source": "10.0.0.9"})),
    ("config.reloaded", {"applied": ["log.level"], "needs_restart": ["server.port"]},
     expected("config_reloaded", "gatewayd", "configuration",
              {"applied": ["log.level"], "needs_restart": ["server.port"]})),
    ("journal.compacted", {"snapshot_seq": 40, "snapshot_bytes": 1234, "segments_deleted": ["a", "b"]},
     expected("journal_compacted", "gatewayd", "journal",
              {"snapshot_seq": 40, "snapshot_bytes": 1234, "segments_deleted": 2})),
    ("server.started", {"version": "0.1.0", "pid": 7, "http_port": 3000, "udp_port": 1700},
     expected("server_started", "gatewayd", "server",
              {"version": "0.1.0", "pid": 7, "http_port": 3000, "udp_port": 1700})),
    ("server.stopping", {"pid": 7}, expected("server_stopping", "gatewayd", "server", {"pid": 7})),
]


@pytest.mark.parametrize("type_, data, frame", CORE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CORE_CASES)])
def test_core_records_as_actions(type_, data, frame):
    assert frame_of(type_, data) == frame
    assert "secret" not in str(frame)


async def test_device_created_and_token_rotated(daemon):
    from tests.devices.helpers import api, create_device

    async with open_monitor(daemon, "actions", types="device_created,device_token_rotated") as actions:
        device = await create_device(daemon, name="boiler")
        rotated = await api(daemon, "POST", f"/api/devices/{device['id']}/token")
        assert rotated.status_code == 200, rotated.text
        created, rotation = await next_frame(actions), await next_frame(actions)
    assert (created["ActionType"], created["Target"], created["Details"]["name"]) == \
        ("device_created", device["id"], "boiler")
    assert created["Actor"] == "apikey:tests"
    assert (rotation["ActionType"], rotation["Target"]) == ("device_token_rotated", device["id"])
    assert rotation["Seq"] > created["Seq"]
    for frame in (created, rotation):
        assert device["token"] not in str(frame) and rotated.json()["token"] not in str(frame)


async def test_failed_login_and_bad_device_token(daemon):
    from tests.devices.helpers import create_device, open_websocket_url, receive_json, send_json, ws_url

    device = await create_device(daemon)
    async with open_monitor(daemon, "actions", types="auth_failed") as actions:
        async with httpx.AsyncClient(base_url=daemon.base_url) as client:
            page = await client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            response = await client.post("/login", data={"username": "admin", "password": "WrongPassw0rd!",
                                                         "csrf_token": csrf})
            assert response.status_code == 401
        async with open_websocket_url(ws_url(daemon)) as ws:
            await send_json(ws, {"type": "register", "device_id": device["id"], "token": "tok_WrongToken42"})
            assert (await receive_json(ws))["code"] == "auth_failed"
        login, token = await next_frame(actions), await next_frame(actions)
    assert login["Details"] == {"kind": "login", "source": "127.0.0.1"}
    user_hash = daemon.core.access.subject_hash("user", "admin")  # the typed name is never shown
    assert (login["Actor"], login["Target"]) == ("127.0.0.1", f"user#{user_hash}")
    assert token["Details"] == {"kind": "device_token", "source": "127.0.0.1"}
    assert token["Target"] == device["id"]
    assert "WrongPassw0rd" not in str(login) and "WrongToken42" not in str(token)


async def test_actions_since_replays_history(daemon):
    wanted = "admin_password_set,server_started,apikey_created"
    async with open_monitor(daemon, "actions", since=1, types=wanted) as actions:
        first = [await next_frame(actions) for _ in range(3)]
    assert [f["ActionType"] for f in first] == wanted.split(",")
    assert first[0]["Seq"] == 1 and first[0]["Seq"] < first[1]["Seq"] < first[2]["Seq"]

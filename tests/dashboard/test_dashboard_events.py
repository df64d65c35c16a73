"""Records -> dashboard events: readable, filterable, and never carrying a hash or a key."""

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from gatewayd.journal.record import Record
from gatewayd.connectors.monitor import dashboard_events
from gatewayd.gateway import comm_tables

COMMS = comm_tables()

TS = "2026-06-12T10:00:00.000000Z"
DEVICE = "3f1e1c2a-0000-4000-8000-000000000001"


def event(record_type: str, data: dict, seq: int = 7):
    return dashboard_events.render(Record(seq, TS, record_type, data), COMMS)


def test_presence_telemetry_and_commands():
    connected = event("device.connected", {"device_id": DEVICE, "name": "boiler", "connector": "ws",
                                           "remote": "10.0.0.5", "session": "s1"})
    assert connected["type"] == "device_connected" and connected["category"] == "presence"
    assert connected["text"] == "boiler connected from 10.0.0.5" and (connected["seq"], connected["ts"]) == (7, TS)
    telemetry = event("device.telemetry", {"device_id": DEVICE, "name": "boiler", "payload": {"t": 21.5}})
    assert telemetry["type"] == "telemetry" and telemetry["payload"] == {"t": 21.5} and "t=21.5" in telemetry["text"]
    acked = event("command.acknowledged", {"device_id": DEVICE, "command_id": "cmd_1", "command": "reboot",
                                           "result": {"ok": 1}})
    assert (acked["category"], acked["state"], acked["result"]) == ("command", "acknowledged", {"ok": 1})
    punches = event("attendance.punches", {"source": "SN1", "connector": "http", "tz": "UTC", "held": True,
                                           "punches": [{"enrollid": 1}, {"enrollid": 2}]})
    assert punches["count"] == 2 and "held" in punches["text"] and punches["sn"] == "SN1"


def test_no_hashes_or_keys_reach_the_browser():
    secrets = [
        ("device.created", {"device_id": DEVICE, "name": "x", "kind": "ws", "tags": [], "token_hash": "sha256:SECRET"}),
        ("device.token_rotated", {"device_id": DEVICE, "name": "x", "token_hash": "sha256:SECRET"}),
        ("device.created", {"device_id": DEVICE, "name": "x", "kind": "lorawan", "tags": [],
                            "lorawan": {"dev_eui": "0102030405060708", "app_key": "sealed:SECRET"}}),
        ("apikey.created", {"key_id": "abcd1234", "name": "ci", "hash": "sha256:SECRET"}),
        ("admin.password_set", {"hash": "scrypt$SECRET", "generated": False}),
        ("auth.failed", {"kind": "apikey", "source": "10.0.0.9", "subject": "SECRETSECRET"}),
    ]
    for record_type, data in secrets:
        rendered = event(record_type, data)
        assert rendered is not None, record_type
        assert "SECRET" not in json.dumps(rendered), record_type
    assert event("apikey.created", secrets[3][1])["text"].startswith("apikey created: abcd1234 (ci)")


def test_records_without_meaning_give_nothing():
    assert event("journal.internal_thing", {"x": 1}) is None
    assert event("gateway.alive", {"eui": "0102030405060708", "kind": "keepalive"}) is None
    assert event("gateway.alive", {"eui": "0102030405060708", "came_online": True})["type"] == "gateway_online"


KNOWN = sorted(dashboard_events._RENDERERS) + ["terminal.online", "terminal.command_sent", "apikey.created"]
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                      max_leaves=6)


# Generation speed depends on the machine's load; the property does not.
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(st.sampled_from(KNOWN), st.dictionaries(st.sampled_from(
    ["device_id", "name", "payload", "command", "command_id", "sn", "eui", "stat", "punches", "actor", "remote",
     "reason", "kind", "source", "subject", "user", "tags", "changes", "error", "result", "key_id"]), values, max_size=8))
def test_any_record_data_renders_or_is_skipped(record_type, data):
    rendered = event(record_type, data)
    if rendered is not None:
        json.dumps(rendered, default=str)
        assert rendered["category"] in dashboard_events.CATEGORIES

"""The devices and commands parts: pure appliers, the same result live and on replay."""

import json

from gatewayd.journal.record import Record
from gatewayd.connectors.devices.commands_state import CommandsState
from gatewayd.connectors.devices.state import DevicesState

TS = "2026-06-12T09:00:00.000000Z"


def records():
    yield Record(1, TS, "device.created", {"device_id": "d", "name": "n", "kind": "ws", "tags": [],
                                           "token_hash": "sha256:0"})
    for i in range(5):
        yield Record(2 + i, TS, "device.telemetry", {"device_id": "d", "payload": {"i": i}})
    yield Record(8, TS, "command.queued", {"device_id": "d", "command_id": "c1", "command": "a", "payload": {}})
    yield Record(9, TS, "command.queued", {"device_id": "d", "command_id": "c2", "command": "b", "payload": {}})
    yield Record(10, TS, "command.acknowledged", {"device_id": "d", "command_id": "c1", "command": "a"})
    yield Record(11, TS, "command.sent", {"device_id": "d", "command_id": "c1", "command": "a"})
    yield Record(12, TS, "device.online", {"device_id": "d", "connector": "ws"})


def test_latest_values_and_states_only_move_forward():
    devices, commands = DevicesState(), CommandsState()
    for record in records():
        for part in (devices, commands):
            applier = part.appliers().get(record.type)
            if applier:
                applier(record)
    assert devices.latest["d"]["i"]["value"] == 4
    assert commands.get("c1")["state"] == "acknowledged" and commands.get("c1")["sent"] == TS
    assert [c["id"] for c in commands.pending("d")] == ["c2"]

    copy_devices, copy_commands = DevicesState(), CommandsState()
    copy_devices.restore(json.loads(json.dumps(devices.snapshot())))
    copy_commands.restore(json.loads(json.dumps(commands.snapshot())))
    assert copy_devices.snapshot() == devices.snapshot() and copy_commands.snapshot() == commands.snapshot()
    assert [c["id"] for c in copy_commands.pending("d")] == ["c2"]

    delete = Record(13, TS, "device.deleted", {"device_id": "d"})
    devices.appliers()["device.deleted"](delete)
    commands.appliers()["device.deleted"](delete)
    assert devices.get("d") is None and commands.get("c2") is None and not commands.queued


def test_finished_commands_are_trimmed():
    commands = CommandsState()
    commands.finished_limit = 2
    for i in range(5):
        commands.appliers()["command.queued"](Record(i * 2, TS, "command.queued", {
            "device_id": "d", "command_id": f"c{i}", "command": "x"}))
        commands.appliers()["command.expired"](Record(i * 2 + 1, TS, "command.expired", {
            "device_id": "d", "command_id": f"c{i}"}))
    assert [c["id"] for c in commands.for_device("d")] == ["c3", "c4"]


def test_attempts_are_counted_and_unanswered_commands_are_due_on_another_session():
    commands = CommandsState()
    apply = commands.appliers()
    apply["command.queued"](Record(1, TS, "command.queued", {"device_id": "d", "command_id": "c1", "command": "a",
                                                             "max_attempts": 2}))
    apply["command.queued"](Record(2, TS, "command.queued", {"device_id": "d", "command_id": "c2", "command": "b"}))
    apply["command.sent"](Record(3, TS, "command.sent", {"device_id": "d", "command_id": "c1", "session": "s1",
                                                         "attempt": 1}))
    assert commands.to_send("d", "s1")["id"] == "c2"  # not twice on one session
    assert commands.to_send("d", "s2")["id"] == "c1"  # queue order on the next one
    apply["command.sent"](Record(4, TS, "command.sent", {"device_id": "d", "command_id": "c1", "session": "s2"}))
    c1 = commands.get("c1")
    assert (c1["attempts"], c1["max_attempts"], c1["session"]) == (2, 2, "s2") and list(commands.sent) == ["c1"]
    copy = CommandsState()
    copy.restore(json.loads(json.dumps(commands.snapshot())))
    assert copy.snapshot() == commands.snapshot() and list(copy.sent) == ["c1"] and list(copy.queued) == ["c2"]
    for part in (commands, copy):
        part.appliers()["command.acknowledged"](Record(5, TS, "command.acknowledged", {"device_id": "d",
                                                                                       "command_id": "c1"}))
        part.appliers()["command.failed"](Record(6, TS, "command.failed", {"device_id": "d", "command_id": "c1",
                                                                           "error": "late"}))
        assert part.get("c1")["state"] == "acknowledged" and part.get("c1")["error"] is None  # final
        assert not part.sent and part.to_send("d", "s3")["id"] == "c2"

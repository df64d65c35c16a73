"""The terminal and attendance state parts: pure appliers, snapshots that round-trip, replay == live.
(The punches themselves are history: tests/history.)"""

from __future__ import annotations

import json

from gatewayd.journal.record import Record
from gatewayd.connectors.terminals.attendance_state import AttendanceState, punch_key
from gatewayd.connectors.terminals.state import TerminalsState

TS = "2026-06-12T10:00:00.000000Z"


def _punches(seq: int, source: str, items: list[tuple], held: bool = False) -> Record:
    return Record(seq, TS, "attendance.punches", {
        "source": source, "connector": "http", "tz": "UTC", "held": held,
        "punches": [{"enrollid": e, "time": t, "mode": 0, "inout": i, "event": 0, "utc": t.replace(" ", "T") + "Z",
                     **({"key_time": t.replace("T", " ")} if "T" in t else {})} for e, t, i in items]})


def _apply(parts, records):
    for record in records:
        for part in parts:
            applier = part.appliers().get(record.type)
            if applier:
                applier(record)


RECORDS = [
    Record(1, TS, "terminal.added", {"sn": "A", "name": "front", "tz": "Europe/Rome", "actor": "cli"}),
    Record(2, TS, "terminal.pending", {"sn": "P", "connector": "http", "remote": "x"}),
    _punches(3, "A", [(1, "2026-06-12 09:00:00", 0), (2, "2026-06-12 09:01:00", 1)]),
    _punches(4, "P", [(1, "2026-06-12 09:00:00", 0)], held=True),
    _punches(5, "A", [(1, "2026-06-12T09:00:00", 0), (3, "2026-06-12 09:02:00", 0)]),  # one is a resend
    Record(6, TS, "terminal.command_queued", {"command_id": "c1", "sn": "A", "command": "gettime", "params": {},
                                              "source": "cli", "expires": TS}),
    Record(7, TS, "terminal.command_sent", {"command_id": "c1", "sn": "A", "command": "gettime", "try": 1}),
    Record(8, TS, "terminal.command_acknowledged", {"command_id": "c1", "sn": "A", "command": "gettime",
                                                    "result": {"time": "x"}}),
    Record(9, TS, "terminal.online", {"sn": "A", "connector": "http"}),
]


def test_appliers_dedup_and_hold():
    terminals, attendance = TerminalsState(), AttendanceState()
    _apply([terminals, attendance], RECORDS)
    assert len(attendance.recent) == 4  # the 'T' resend was not counted again
    assert attendance.held_count("P") == 1 and attendance.recent_seq(punch_key("A", 3, "2026-06-12 09:02:00", 0, 0)) == 5
    assert terminals.commands["c1"]["state"] == "acknowledged" and terminals.get("A")["online"]
    _apply([terminals, attendance], [Record(10, TS, "terminal.approved", {"sn": "P", "actor": "cli", "held": 1})])
    assert attendance.held_count("P") == 0 and len(attendance.recent) == 4
    assert terminals.get("P")["status"] == "accepted"
    attendance.forget_until(4)  # the history store has applied up to seq 4
    assert list(attendance.recent.values()) == [5]


def test_rejected_drops_held_and_frees_their_keys():
    attendance = AttendanceState()
    _apply([attendance], [_punches(1, "P", [(1, "2026-06-12 09:00:00", 0)], held=True),
                          Record(2, TS, "terminal.rejected", {"sn": "P"})])
    assert attendance.recent == {} and attendance.held == {}
    assert attendance.dropped_after("P", 1) and not attendance.dropped_after("P", 2)
    attendance.forget_until(2)
    assert not attendance.dropped_after("P", 1)


def test_snapshot_round_trip_keeps_the_held_counts():
    terminals, attendance = TerminalsState(), AttendanceState()
    _apply([terminals, attendance], RECORDS)
    restored_t, restored_a = TerminalsState(), AttendanceState()
    restored_t.restore(json.loads(json.dumps(terminals.snapshot())))
    restored_a.restore(json.loads(json.dumps(attendance.snapshot())))
    assert restored_a.snapshot() == attendance.snapshot() and restored_t.snapshot() == terminals.snapshot()
    assert restored_a.held == attendance.held == {"P": 1}


def test_an_earlier_snapshot_with_every_punch_is_handed_over():
    legacy = {"next_id": 3, "fields": ["id", "seq", "source", "held"], "rows": [[1, 3, "A", False], [2, 4, "P", True]]}
    attendance = AttendanceState()
    attendance.restore(legacy)
    assert attendance.held == {"P": 1} and attendance.legacy is legacy


def test_finished_commands_are_bounded():
    from gatewayd.connectors.terminals.state import FINISHED_COMMANDS_KEPT

    terminals = TerminalsState()
    records = []
    for i in range(FINISHED_COMMANDS_KEPT + 5):
        records.append(Record(2 * i + 1, TS, "terminal.command_queued", {"command_id": f"c{i}", "sn": "A",
                                                                           "command": "gettime"}))
        records.append(Record(2 * i + 2, TS, "terminal.command_failed", {"command_id": f"c{i}", "sn": "A",
                                                                           "command": "gettime", "reason": "x"}))
    _apply([terminals], records)
    assert len(terminals.commands) == FINISHED_COMMANDS_KEPT and "c0" not in terminals.commands

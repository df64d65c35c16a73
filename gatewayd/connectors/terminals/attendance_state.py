"""Attendance punches from terminals and devices, with the dedup index that makes resends safe.

A punch is identified by (source, enrollid, normalised local time, inout, event) — PROTOCOLS.md
3.1. The index lives here, in the state, so it survives restarts exactly like the punches do.
Punches of a terminal still waiting for approval are stored "held": indexed (a resend is not
stored twice) but left out of queries until `terminal.approved` releases them or
`terminal.rejected` / `terminal.deleted` drops them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

from ...journal.record import Record

# Order of a punch's fields in snapshots (rows are saved as lists to keep snapshots small).
_FIELDS = ("id", "seq", "received", "source", "connector", "enrollid", "time", "key_time", "tz",
           "utc", "mode", "inout", "event", "temp", "verifymode", "image_chars", "skew", "held")


class StoredPunch:
    __slots__ = _FIELDS + ("utc_ts",)

    def __init__(self, id, seq, received, source, connector, enrollid, time, key_time, tz, utc, mode, inout,
                 event, temp=None, verifymode=None, image_chars=None, skew=False, held=False) -> None:
        self.id, self.seq, self.received, self.source, self.connector = id, seq, received, source, connector
        self.enrollid, self.time, self.key_time, self.tz, self.utc = enrollid, time, key_time, tz, utc
        self.mode, self.inout, self.event, self.temp, self.verifymode = mode, inout, event, temp, verifymode
        self.image_chars, self.skew, self.held = image_chars, skew, held
        self.utc_ts = datetime.fromisoformat(utc).timestamp()

    @property
    def key(self) -> str:
        return punch_key(self.source, self.enrollid, self.key_time or self.time, self.inout, self.event)

    def as_list(self) -> list[Any]:
        return [getattr(self, name) for name in _FIELDS]


def punch_key(source: str, enrollid: int, local_time: str, inout: int, event: int) -> str:
    return f"{source}\x1f{enrollid}\x1f{local_time}\x1f{inout}\x1f{event}"


class AttendanceState:
    name = "attendance"

    def __init__(self) -> None:
        self.punches: dict[int, StoredPunch] = {}
        self.by_key: dict[str, int] = {}
        self.held: dict[str, set[int]] = {}
        self.next_id = 1

    def appliers(self):
        return {
            "attendance.punches": self._punches,
            "terminal.approved": self._release,
            "terminal.rejected": self._drop_held,
            "terminal.deleted": self._drop_held,
        }

    # -- appliers -------------------------------------------------------------------------------
    def _punches(self, record: Record) -> None:
        data = record.data
        source, connector, tz, held = data["source"], data["connector"], data["tz"], bool(data.get("held"))
        by_key = self.by_key
        for item in data["punches"]:
            key_time = item.get("key_time")
            key = punch_key(source, item["enrollid"], key_time or item["time"], item["inout"], item["event"])
            if key in by_key:
                continue  # idempotent: a record never stores a punch twice
            image = item.get("image")
            punch = StoredPunch(self.next_id, record.seq, record.ts, source, connector, item["enrollid"],
                                item["time"], key_time, tz, item["utc"], item["mode"], item["inout"],
                                item["event"], item.get("temp"), item.get("verifymode"),
                                len(image) if image else None, bool(item.get("skew")), held)
            self.punches[punch.id] = punch
            by_key[key] = punch.id
            if held:
                self.held.setdefault(source, set()).add(punch.id)
            self.next_id += 1

    def _add(self, punch: StoredPunch) -> None:
        self.punches[punch.id] = punch
        self.by_key[punch.key] = punch.id
        if punch.held:
            self.held.setdefault(punch.source, set()).add(punch.id)

    def _release(self, record: Record) -> None:
        for punch_id in self.held.pop(record.data["sn"], ()):
            self.punches[punch_id].held = False

    def _drop_held(self, record: Record) -> None:
        for punch_id in self.held.pop(record.data["sn"], ()):
            punch = self.punches.pop(punch_id)
            self.by_key.pop(punch.key, None)

    # -- reading ----------------------------------------------------------------------------------
    def seq_of(self, key: str) -> int | None:
        punch_id = self.by_key.get(key)
        return None if punch_id is None else self.punches[punch_id].seq

    def held_count(self, source: str) -> int:
        return len(self.held.get(source, ()))

    def iter_stored(self) -> Iterator[StoredPunch]:
        """Punches in arrival order, held ones left out."""
        return (p for p in self.punches.values() if not p.held)

    # -- snapshots --------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"next_id": self.next_id, "fields": list(_FIELDS),
                "rows": [p.as_list() for p in self.punches.values()]}

    def restore(self, data: dict[str, Any]) -> None:
        self.__init__()
        fields = data["fields"]
        for row in data["rows"]:
            self._add(StoredPunch(**dict(zip(fields, row))))  # by name: snapshots may come from older field lists
        self.next_id = data["next_id"]

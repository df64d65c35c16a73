"""Attendance: what the model needs to decide about punches; the punches themselves are history.

A punch is identified by (source, enrollid, normalised local time, inout, event) — PROTOCOLS.md
3.1. Every punch is kept in the history store (gatewayd/history), which catches up with the
journal at start and within `history.commit_interval` while running. The model keeps only
- `recent`: the dedup keys of punches the store may not have yet (key -> seq), so that a resend is
  recognised before the store has it; the store's progress prunes them (`forget_until`). Not kept
  while replaying at start: the store catches up with every replayed record before anything is
  served, so replaying a year of punches costs no memory;
- `held`: how many punches of each source wait for the terminal's approval; punches of a pending
  terminal are stored "held" (a resend is not stored twice) and left out of queries until
  `terminal.approved` releases them or `terminal.rejected` / `terminal.deleted` drops them;
- `recent_drops`: sources whose held punches were dropped at a seq the store has not reached, so a
  held row the store still shows is not mistaken for a stored punch.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ...journal.record import Record


def punch_key(source: str, enrollid: int, local_time: str, inout: int, event: int) -> str:
    return f"{source}\x1f{enrollid}\x1f{local_time}\x1f{inout}\x1f{event}"


class AttendanceState:
    name = "attendance"

    def __init__(self) -> None:
        # In seq order; an OrderedDict because the oldest are dropped from the front, which a dict
        # makes slower with every deleted entry until it resizes.
        self.recent: OrderedDict[str, int] = OrderedDict()
        self.recent_held: dict[str, list[str]] = {}
        self.held: dict[str, int] = {}
        self.recent_drops: dict[str, int] = {}
        # Punches an earlier version kept in the snapshot: handed to the history store once, at start.
        self.legacy: dict[str, Any] | None = None
        self.replaying = False

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
        source, held = data["source"], bool(data.get("held"))
        recent = self.recent
        remember = not self.replaying
        added = 0
        for item in data["punches"]:
            key = punch_key(source, item["enrollid"], item.get("key_time") or item["time"], item["inout"],
                            item["event"])
            if key in recent:
                continue  # idempotent: a record never counts a punch twice
            if remember:
                recent[key] = record.seq
            if held and remember:
                self.recent_held.setdefault(source, []).append(key)
            added += 1
        if held and added:
            self.held[source] = self.held.get(source, 0) + added

    def _release(self, record: Record) -> None:
        self.held.pop(record.data["sn"], None)
        self.recent_held.pop(record.data["sn"], None)

    def _drop_held(self, record: Record) -> None:
        source = record.data["sn"]
        self.held.pop(source, None)
        for key in self.recent_held.pop(source, ()):
            self.recent.pop(key, None)
        self.recent_drops[source] = record.seq

    # -- the history store's progress -------------------------------------------------------------
    def forget_until(self, seq: int) -> None:
        """The store has applied every record up to `seq`: it answers for those punches now."""
        recent = self.recent
        while recent:
            key, kept_seq = recent.popitem(last=False)
            if kept_seq > seq:
                recent[key] = kept_seq
                recent.move_to_end(key, last=False)
                break
        if not recent:
            self.recent = recent = OrderedDict()  # an emptied dict keeps its table: give it back
        if self.recent_held:
            for source in list(self.recent_held):
                keys = [k for k in self.recent_held[source] if k in recent]
                if keys:
                    self.recent_held[source] = keys
                else:
                    del self.recent_held[source]
        for source, dropped_at in list(self.recent_drops.items()):
            if dropped_at <= seq:
                del self.recent_drops[source]

    # -- reading ----------------------------------------------------------------------------------
    def recent_seq(self, key: str) -> int | None:
        return self.recent.get(key)

    def dropped_after(self, source: str, seq: int) -> bool:
        """True when held punches of `source` stored at `seq` were dropped since (store not there yet)."""
        return self.recent_drops.get(source, 0) > seq

    def held_count(self, source: str) -> int:
        return self.held.get(source, 0)

    # -- snapshots --------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"format": 2, "held": dict(self.held)}

    def restore(self, data: dict[str, Any]) -> None:
        self.__init__()
        if "rows" in data:  # an earlier version's snapshot: every punch, as rows
            fields = data["fields"]
            held_index = fields.index("held") if "held" in fields else None
            source_index = fields.index("source")
            for row in data["rows"]:
                if held_index is not None and row[held_index]:
                    self.held[row[source_index]] = self.held.get(row[source_index], 0) + 1
            self.legacy = data
            return
        self.held = dict(data.get("held", {}))

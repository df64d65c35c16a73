"""The in-memory model. It changes only by applying journal records, live and on replay alike.

The model is split into parts, one per domain. A part declares which record types it applies
(`appliers`) and how it is saved into and restored from a snapshot. Applying is a pure fold:
no I/O, no clock, no randomness — everything needed is in the record.
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Iterable, Protocol

from ..journal.record import Record

Applier = Callable[[Record], None]


class StatePart(Protocol):
    name: str

    def appliers(self) -> dict[str, Applier]: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, data: dict[str, Any]) -> None: ...


class State:
    def __init__(self, parts: Iterable[StatePart]):
        self.seq = 0
        self.parts: dict[str, StatePart] = {}
        appliers: dict[str, list[Applier]] = {}
        for part in parts:
            self.parts[part.name] = part
            for record_type, applier in part.appliers().items():
                appliers.setdefault(record_type, []).append(applier)
        # One callable per type, so applying a record is one lookup and one call.
        self._dispatch: dict[str, Applier] = {
            record_type: chain[0] if len(chain) == 1 else _in_turn(chain)
            for record_type, chain in appliers.items()
        }

    def apply(self, record: Record) -> None:
        applier = self._dispatch.get(record.type)
        if applier is not None:
            applier(record)
        self.seq = record.seq

    def replay(self, records: Iterable[Record]) -> int:
        """Apply records in order, as at startup; returns how many.

        The cyclic garbage collector is paused meanwhile: replay allocates millions of objects that
        plain reference counting frees, and collections triggered by that churn cost as much as the
        decoding itself. Cycles, if an applier made any, are collected once it runs again."""
        dispatch = self._dispatch.get
        count = 0
        was_enabled = gc.isenabled()
        gc.disable()
        # Parts with a `replaying` flag may skip what only live decisions need (caches that a
        # projection rebuilds before anything is served).
        flagged = [part for part in self.parts.values() if hasattr(part, "replaying")]
        for part in flagged:
            part.replaying = True
        try:
            for record in records:
                applier = dispatch(record.type)
                if applier is not None:
                    applier(record)
                self.seq = record.seq
                count += 1
        finally:
            for part in flagged:
                part.replaying = False
            if was_enabled:
                gc.enable()
        return count

    def snapshot(self) -> dict[str, Any]:
        return {"seq": self.seq, "parts": {name: part.snapshot() for name, part in self.parts.items()}}

    def restore(self, data: dict[str, Any]) -> None:
        self.seq = data["seq"]
        for name, part_data in data["parts"].items():
            part = self.parts.get(name)
            if part is not None:
                part.restore(part_data)

    def __getattr__(self, name: str) -> StatePart:
        try:
            return self.__dict__["parts"][name]
        except KeyError:
            raise AttributeError(name) from None


def _in_turn(chain: list[Applier]) -> Applier:
    def apply_each(record: Record) -> None:
        for applier in chain:
            applier(record)

    return apply_each


def build_state(settings, part_classes: Iterable[type]) -> State:
    """The daemon's full model: these parts, in this order. Parts with a `configure(settings)`
    get it before any record is applied, so replay and live use the same limits."""
    parts = [cls() for cls in part_classes]
    if settings is not None:
        for part in parts:
            if hasattr(part, "configure"):
                part.configure(settings)
    return State(parts)

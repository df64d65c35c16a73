"""The in-memory model. It changes only by applying journal records, live and on replay alike.

The model is split into parts, one per domain. A part declares which record types it applies
(`appliers`) and how it is saved into and restored from a snapshot. Applying is a pure fold:
no I/O, no clock, no randomness — everything needed is in the record.
"""

from __future__ import annotations

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
        self._appliers: dict[str, list[Applier]] = {}
        for part in parts:
            self.parts[part.name] = part
            for record_type, applier in part.appliers().items():
                self._appliers.setdefault(record_type, []).append(applier)

    def apply(self, record: Record) -> None:
        for applier in self._appliers.get(record.type, ()):
            applier(record)
        self.seq = record.seq

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


def build_state(settings=None) -> State:
    """The daemon's full model: every part, in a fixed order. Parts with a `configure(settings)`
    get it before any record is applied, so replay and live use the same limits."""
    from .registry import part_classes

    parts = [cls() for cls in part_classes()]
    if settings is not None:
        for part in parts:
            if hasattr(part, "configure"):
                part.configure(settings)
    return State(parts)

"""A small model used to test the journal machinery independently of the product's domains."""

from __future__ import annotations

from gatewayd.journal.record import Record
from gatewayd.state import State
from gatewayd.state.access import AccessState


class CounterState:
    name = "counters"

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.log: list[int] = []

    def appliers(self):
        return {"test.add": self._add, "test.reset": self._reset}

    def _add(self, record: Record) -> None:
        key = record.data["key"]
        self.values[key] = self.values.get(key, 0) + record.data["amount"]
        self.log.append(record.seq)
        del self.log[:-50]

    def _reset(self, record: Record) -> None:
        self.values.pop(record.data["key"], None)

    def snapshot(self):
        return {"values": self.values, "log": self.log}

    def restore(self, data):
        self.values = dict(data["values"])
        self.log = list(data["log"])


def make_test_state() -> State:
    return State([CounterState(), AccessState()])

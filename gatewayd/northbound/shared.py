"""The northbound events of recent records, rendered once for every forwarder that reads them.

Each webhook sender (and any other forwarder with the same rendering: directory, zone, site) reads
the same records; `SharedEvents.of(record)` renders a record's events the first time one of them
asks and hands the same objects to the others, with their JSON encoded once, when first needed.
Only the newest `size` records that have events are kept (a few KiB each at most); a reader
further behind renders again what it reads (the journal holds the records, this only a shortcut).

The bodies are shared: readers must not change them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import orjson

from ..journal.record import Record
from .events import NorthboundEvent

RECORDS_KEPT = 1024  # like the hub's window of recent records: senders near each other share


class SharedEvent:
    """One event and its body as JSON (encoded on first use)."""

    __slots__ = ("event", "_json")

    def __init__(self, event: NorthboundEvent):
        self.event = event
        self._json: bytes | None = None

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = orjson.dumps(self.event.body)
        return self._json


class SharedEvents:
    """`render(record)` gives a record's events; `may_have_events(record_type)` is False for the
    types that never give any (most of the journal), which are neither rendered nor kept."""

    def __init__(self, render: Callable[[Record], list[NorthboundEvent]],
                 may_have_events: Callable[[str], bool], size: int = RECORDS_KEPT):
        self._render = render
        self._may_have_events = may_have_events
        self._size = size
        self._by_seq: dict[int, list[SharedEvent]] = {}
        self.rendered = 0  # records rendered (for tests and benchmarks)

    def of(self, record: Record) -> Sequence[SharedEvent]:
        events = self._by_seq.get(record.seq)
        if events is None:
            if not self._may_have_events(record.type):
                return ()
            events = [SharedEvent(event) for event in self._render(record)]
            self.rendered += 1
            by_seq = self._by_seq
            by_seq[record.seq] = events
            if len(by_seq) > self._size:
                del by_seq[next(iter(by_seq))]  # the one kept longest
        return events

"""The two monitoring streams, "communications" and "actions": which records they carry, how one record
becomes its frames (the connectors' mappers, then the JSON text), what `since` and filters may say."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...comm_tables import CommTables
from ...journal.record import Record
from ...web.wsframe import SharedText
from .resiot import COMM_TYPES, StreamFilter, encode_action, encode_envelope, parse_filter

log = logging.getLogger("gatewayd.monitor")

STREAMS = ("communications", "actions")

# One record's frames: (the Communication or Action, its JSON text and frame).
Rendered = list[tuple[Any, SharedText]]


def local_zone(name: str) -> tzinfo:
    """The zone for DT fields: the configured one, else the box's own (TZ, then /etc/localtime)."""
    for candidate in (name, os.environ.get("TZ", "").lstrip(":")):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                pass
    try:
        with open("/etc/localtime", "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        from datetime import datetime

        return datetime.now().astimezone().tzinfo  # a fixed offset: the best left


# -- rendering ----------------------------------------------------------------------------------------
class MappedComms:
    """The communications the live stream mapped lately, by record seq, for the history store's
    worker thread to take instead of mapping the same record again. Bounded (the oldest go first);
    every access is a single dict operation, so the event loop and the worker thread can share it."""

    LIMIT = 2048

    def __init__(self) -> None:
        self._items: dict[int, list] = {}

    def keep(self, seq: int, items: list) -> None:
        kept = self._items
        kept[seq] = items
        if len(kept) > self.LIMIT:
            kept.pop(next(iter(kept)), None)

    def take(self, seq: int) -> list | None:
        return self._items.pop(seq, None)


_FAILED_TYPES: set[str] = set()


@dataclass(frozen=True)
class StreamKind:
    name: str
    mappers: dict  # record type -> mapper (one of the core's CommTables)
    known_types: Sequence[str] | None  # what `types=` may name (None: anything)

    def accepts(self, record: Record) -> bool:
        return record.type in self.mappers

    def render(self, record: Record, zone: tzinfo, mapped: "MappedComms | None" = None) -> Rendered:
        """Every frame of one record, encoded once for every session. A failing mapper costs its
        record's frames, nothing more. `mapped` keeps the record's communications for the history
        store, which maps the same records a moment later."""
        mapper = self.mappers.get(record.type)
        if mapper is None:
            return []
        try:
            if self.name == "communications":
                items = list(mapper(record))
                if mapped is not None:
                    mapped.keep(record.seq, items)
                return [(c, SharedText(encode_envelope(c, zone))) for c in items]
            action = mapper(record)
            return [] if action is None else [(action, SharedText(encode_action(action, zone)))]
        except Exception:
            # The first failure of a record type gets a traceback; repeats would flood the log.
            if record.type not in _FAILED_TYPES:
                _FAILED_TYPES.add(record.type)
                log.exception("monitor: the %s mapper for %s failed on seq %d (later failures of this type "
                              "are logged at debug level)", self.name, record.type, record.seq)
            else:
                log.debug("monitor: the %s mapper for %s failed on seq %d", self.name, record.type, record.seq)
            return []

    def matches(self, flt: StreamFilter, item: Any) -> bool:
        return flt.matches_comm(item) if self.name == "communications" else flt.matches_action(item)

    def select(self, flt: StreamFilter | None, frames: Rendered) -> list[SharedText]:
        if flt is None:
            return [frame for _, frame in frames]
        return [frame for item, frame in frames if self.matches(flt, item)]

    def parse_filter(self, query) -> StreamFilter | None:
        """The filter a URL asks for (None = everything). Raises ValueError with a precise text."""
        flt = parse_filter(query, self.known_types)
        empty = flt.types is None and flt.dev is None and flt.connector is None
        return None if empty else flt


def stream_kinds(tables: CommTables) -> dict[str, StreamKind]:
    """The two streams, with the connectors' mappers (core.comms)."""
    return {"communications": StreamKind("communications", tables.comm_mappers, COMM_TYPES),
            "actions": StreamKind("actions", tables.action_mappers, None)}


def parse_since(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ValueError(f"since: {value[:24]!r} is not a sequence number (a whole number >= 0)")
    return int(value)

"""The two monitoring streams, "communications" and "actions": which records they carry, how one record
becomes its frames (the connectors' mappers, then the JSON text), what `since` and filters may say."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Callable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...comm_tables import CommTables
from ...journal.record import Record
from ...web.wsframe import SharedText
from .resiot import COMM_TYPES, StreamFilter, encode_action, encode_envelope, parse_filter

log = logging.getLogger("gatewayd.monitor")

STREAMS = ("communications", "actions")

# One record's frames: (the Communication or Action, its JSON text and frame).
Rendered = list[tuple[Any, SharedText]]


class _LazyText(SharedText):
    """A frame whose text is written when first read, as encode(item, zone): a communication no
    feed selects (a filter asks for comm_rx only, say) is never encoded."""

    __slots__ = ("_encode", "_item", "_zone", "_text")

    def __init__(self, encode: Callable[[Any, tzinfo], str], item: Any, zone: tzinfo):
        self._encode = encode
        self._item = item
        self._zone = zone
        self._text = None
        self._frame = None

    @property
    def text(self) -> str:  # (shadows SharedText's slot, which stays unused)
        text = self._text
        if text is None:
            text = self._text = self._encode(self._item, self._zone)
        return text


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
_FAILED_TYPES: set[str] = set()


def _failed(stream: str, what: str, seq: int) -> None:
    """Log a record whose frames could not be made (`what`: its type's mapper, or the encoding)."""
    # The first failure of each kind gets a traceback; repeats would flood the log.
    if what not in _FAILED_TYPES:
        _FAILED_TYPES.add(what)
        log.exception("monitor: the %s %s failed on seq %d (later failures of this kind are logged at debug "
                      "level)", stream, what, seq)
    else:
        log.debug("monitor: the %s %s failed on seq %d", stream, what, seq)


@dataclass(frozen=True)
class StreamKind:
    name: str
    mappers: dict  # record type -> mapper (one of the core's CommTables)
    known_types: Sequence[str] | None  # what `types=` may name (None: anything)
    # record type -> the fast form of its comm mapper (comm_tables.EnvelopeMapper)
    envelopes: dict = field(default_factory=dict)

    def accepts(self, record: Record) -> bool:
        return record.type in self.mappers

    def render(self, record: Record, zone: tzinfo) -> Rendered:
        """Every frame of one record, encoded once for every session (when a session's filter first
        selects it). A failing mapper costs its record's frames, nothing more."""
        mapper = self.mappers.get(record.type)
        if mapper is None:
            return []
        try:
            if self.name == "communications":
                envelopes = self.envelopes.get(record.type)
                if envelopes is not None:
                    return [(head, _LazyText(encode, record, zone)) for head, encode in envelopes(record)]
                return [(c, _LazyText(encode_envelope, c, zone)) for c in mapper(record)]
            action = mapper(record)
            return [] if action is None else [(action, SharedText(encode_action(action, zone)))]
        except Exception:
            _failed(self.name, f"mapper for {record.type}", record.seq)
            return []

    def matches(self, flt: StreamFilter, item: Any) -> bool:
        return flt.matches_comm(item) if self.name == "communications" else flt.matches_action(item)

    def select(self, flt: StreamFilter | None, frames: Rendered) -> list[SharedText]:
        if flt is None:
            chosen = [frame for _, frame in frames]
        else:
            chosen = [frame for item, frame in frames if self.matches(flt, item)]
        try:
            for frame in chosen:
                frame.text  # noqa: B018 (encodes a communication's envelope now, once)
        except Exception:
            _failed(self.name, "envelope encoding", frames[0][0].seq)
            return []
        return chosen

    def parse_filter(self, query) -> StreamFilter | None:
        """The filter a URL asks for (None = everything). Raises ValueError with a precise text."""
        flt = parse_filter(query, self.known_types)
        empty = flt.types is None and flt.dev is None and flt.connector is None
        return None if empty else flt


def stream_kinds(tables: CommTables) -> dict[str, StreamKind]:
    """The two streams, with the connectors' mappers (core.comms)."""
    return {"communications": StreamKind("communications", tables.comm_mappers, COMM_TYPES,
                                         tables.envelope_mappers),
            "actions": StreamKind("actions", tables.action_mappers, None)}


def parse_since(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ValueError(f"since: {value[:24]!r} is not a sequence number (a whole number >= 0)")
    return int(value)

"""What connectors add to monitoring, declared as data, and the tables built from it.

A connector lists `Comms` values in its declaration (`Connector.comms`), usually one per module that
maps records: record type -> comm mapper (the communications a record is, ResIOT section 4), record
type -> action mapper (the action it is, section 5), and the connector's TX handlers (section 4.1;
the protocol is gatewayd.connectors.monitor.comms.TxHandler). The core builds ONE `CommTables` from
its connector list when it opens (`core.comms`); the monitoring streams, the history store and the
northbound events all read that. Nothing registers itself at import time.

Mappers are pure functions of the record alone (the streams replay old records, so they must not
look at today's state): records carry every field their frames need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

# record -> iterable of Communication; record -> Action or None (gatewayd.connectors.monitor.resiot)
CommMapper = Callable[[Any], Iterable[Any]]
ActionMapper = Callable[[Any], Any]
# record -> [(CommHead, encode)], encode(record, zone) -> the envelope's JSON text: the live stream's
# fast form of a comm mapper, for busy record types (the same communications, the same text).
EnvelopeMapper = Callable[[Any], list]


@dataclass(frozen=True)
class Comms:
    """One module's part of monitoring (every field optional)."""

    communications: Mapping[str, CommMapper] = field(default_factory=dict)
    actions: Mapping[str, ActionMapper] = field(default_factory=dict)
    tx_handlers: tuple[Any, ...] = ()
    # Optional, per record type that `communications` maps too (see EnvelopeMapper).
    envelopes: Mapping[str, EnvelopeMapper] = field(default_factory=dict)


def each(record_types: Iterable[str], mapper: Callable) -> dict[str, Callable]:
    """The same mapper for several record types: `{**each(("a", "b"), fn), "c": other}`."""
    return dict.fromkeys(record_types, mapper)


class CommTables:
    """Every connector's mappers and TX handlers, merged; never changed once built. A record costs
    one dict lookup per table."""

    __slots__ = ("comm_mappers", "action_mappers", "tx_handlers", "envelope_mappers")

    def __init__(self, parts: Iterable[Comms] = ()):
        comm_mappers: dict[str, CommMapper] = {}
        action_mappers: dict[str, ActionMapper] = {}
        envelope_mappers: dict[str, EnvelopeMapper] = {}
        tx_handlers: list[Any] = []
        for part in parts:
            _merge(comm_mappers, part.communications, "communication")
            _merge(action_mappers, part.actions, "action")
            _merge(envelope_mappers, part.envelopes, "envelope")
            for record_type in part.envelopes:
                if part.communications.get(record_type) is None:
                    raise ValueError(f"an envelope mapper for {record_type!r} without its comm mapper")
            tx_handlers.extend(part.tx_handlers)
        names = [h.connector for h in tx_handlers]
        if len(set(names)) != len(names):
            raise ValueError(f"two TX handlers for one connector: {sorted(names)}")
        # Plain dicts, not read-only views: a view's lookup costs 40 % more, per record and stream.
        self.comm_mappers: dict[str, CommMapper] = comm_mappers
        self.action_mappers: dict[str, ActionMapper] = action_mappers
        self.envelope_mappers: dict[str, EnvelopeMapper] = envelope_mappers
        self.tx_handlers: tuple[Any, ...] = tuple(tx_handlers)

    @classmethod
    def of(cls, connectors: Iterable[Any], *more: Comms) -> "CommTables":
        """The tables of these connectors (in order), plus `more`."""
        return cls([*(part for connector in connectors for part in connector.comms), *more])

    def communications(self, record) -> list:
        mapper = self.comm_mappers.get(record.type)
        return list(mapper(record)) if mapper else []

    def action(self, record):
        mapper = self.action_mappers.get(record.type)
        return mapper(record) if mapper else None


def _merge(table: dict[str, Callable], part: Mapping[str, Callable], what: str) -> None:
    for record_type, mapper in part.items():
        if record_type in table and table[record_type] is not mapper:
            raise ValueError(f"two {what} mappers for {record_type!r}: {table[record_type].__qualname__} and "
                             f"{mapper.__qualname__}")
        table[record_type] = mapper

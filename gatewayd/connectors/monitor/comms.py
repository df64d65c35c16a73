"""How journal records become monitoring frames, and how TX requests reach a connector.

Each domain registers, in its own module:
- comm mappers: record type -> function(record) -> iterable of `Communication` (ResIOT section 4);
- action mappers: record type -> function(record) -> `Action` or None (section 5);
- a TX handler per connector (section 4.1).
Mappers are pure functions of the record alone (the monitoring stream replays old records, so they
must not look at today's state): records carry every field their frames need.
"""

from __future__ import annotations

from typing import Callable, Iterable, Protocol

from ...journal.record import Record
from .resiot import Action, Communication
from .tx_request import TxRequest

CommMapper = Callable[[Record], Iterable[Communication]]
ActionMapper = Callable[[Record], "Action | None"]

COMM_MAPPERS: dict[str, CommMapper] = {}
ACTION_MAPPERS: dict[str, ActionMapper] = {}


def comm_mapper(*record_types: str):
    def register(fn: CommMapper) -> CommMapper:
        for record_type in record_types:
            COMM_MAPPERS[record_type] = fn
        return fn
    return register


def action_mapper(*record_types: str):
    def register(fn: ActionMapper) -> ActionMapper:
        for record_type in record_types:
            ACTION_MAPPERS[record_type] = fn
        return fn
    return register


def communications(record: Record) -> list[Communication]:
    mapper = COMM_MAPPERS.get(record.type)
    return list(mapper(record)) if mapper else []


def action(record: Record) -> Action | None:
    mapper = ACTION_MAPPERS.get(record.type)
    return mapper(record) if mapper else None


class TxHandler(Protocol):
    """A connector that can deliver downlinks (`connector` is its plain name: "ws", "lorawan" ...)."""

    connector: str

    def owns(self, core, dev_key: str) -> bool:
        """True when `dev_key` (a device id, serial number or lower-case DevEUI) is one of ours."""

    async def submit(self, core, dev_key: str, tx: TxRequest) -> None:
        """Validate against the device and queue durably; raise OpError(details) to refuse."""


TX_HANDLERS: list[TxHandler] = []


def register_tx_handler(handler: TxHandler) -> None:
    TX_HANDLERS.append(handler)

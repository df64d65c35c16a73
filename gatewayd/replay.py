"""Replaying the journal into a fresh model: the daemon's start, offline commands, audits, restores."""

from __future__ import annotations

import logging
from typing import Sequence

from .config import Settings
from .connector import Connector
from .journal.reader import JournalReader
from .state import State, build_state
from .state.access import AccessState

log = logging.getLogger("gatewayd.runtime")


def part_classes(connectors: Sequence[Connector]) -> list[type]:
    """Every part of the model, in the order their appliers run: the ground floor's, then each
    connector's."""
    return [AccessState, *(part for connector in connectors for part in connector.state_parts)]


def load_state(journal_dir, until_seq: int | None = None, cut_tail: bool = True,
               settings: Settings | None = None, *, connectors: Sequence[Connector]) -> tuple[State, int]:
    """Replay the journal into a fresh model. Returns (state, records replayed)."""
    reader = JournalReader(journal_dir)
    if cut_tail:
        cut = reader.cut_torn_tail()
        if cut is not None:
            kept = f"kept in {cut.side_file.name}" if cut.side_file else "no room for a copy"
            log.warning("journal: cut a torn tail of %d bytes off %s (%s)", cut.cut_bytes, cut.path.name, kept)
    state = build_state(settings, part_classes(connectors))
    snapshot = reader.load_snapshot(max_seq=until_seq)
    if snapshot is not None:
        state.restore(snapshot.state)
    count = state.replay(reader.records(after_seq=state.seq, until_seq=until_seq, contiguous=True))
    return state, count

"""Opening a state directory: lock, recover the tail, load the snapshot, replay, start the writer.

The daemon and the offline command line both go through `open_core`, so a command run while the
daemon is stopped sees (and changes) exactly the state the daemon would.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

import trio

from .config import Settings
from .connector import Connector
from .core import Core
from .hub import Hub
from .journal.fileops import FileOps
from .journal.lock import JournalLock
from .journal.writer import JournalWriter
from .replay import load_state

log = logging.getLogger("gatewayd.runtime")


@asynccontextmanager
async def open_core(settings: Settings, *, online: bool, connectors: Sequence[Connector],
                    fileops: FileOps | None = None) -> AsyncIterator[Core]:
    journal_dir = settings.state_path / "journal"
    journal_dir.mkdir(parents=True, exist_ok=True)
    settings.state_path.chmod(0o700)
    lock = JournalLock(journal_dir)
    lock.acquire()
    writer = core = None
    try:
        state, replayed = load_state(journal_dir, settings=settings, connectors=connectors)
        log.info("journal: state at seq %d (%d records replayed)", state.seq, replayed)
        writer = JournalWriter(
            journal_dir,
            next_seq=state.seq + 1,
            segment_bytes=settings.journal.segment_bytes,
            flush_interval=settings.journal.flush_interval_ms / 1000,
            commit_interval=settings.journal.commit_interval_ms / 1000,
            fileops=fileops,
        )
        hub = Hub(state, writer, durable_timeout=settings.journal.durable_timeout)
        core = Core(settings, state, hub, writer, online=online, connectors=connectors)
        core.journal_lock = lock
        await core.history.open()
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            core.nursery = nursery
            try:
                yield core
            finally:
                with trio.CancelScope(shield=True):
                    await writer.close()
                nursery.cancel_scope.cancel()
    finally:
        if writer is not None:
            writer.close_files()
        if core is not None:
            core.history.close()
        lock.release()

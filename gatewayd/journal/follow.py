"""Reading the journal onwards from a position: for projections and forwarders.

A reader that hands records on (the history store, MQTT, webhooks) keeps a durable *cursor*: the
last seq it has finished with. It resumes from there after a restart or an outage, so it sees every
durable record once at least and in seq order. Every saved cursor also holds back compaction: a
segment is deleted only when every cursor has moved past all of its records.

`JournalFollower` yields the records after a position in batches. While it is behind, it reads the
journal files (in a worker thread): on from where its last read stopped in the plain segments
(tail.py), so a follower that stays behind decodes each line once; compressed segments, and anything
unusual, are read whole and checked by `JournalReader.records`. Once it has caught up, it takes
records from the hub's window of recently written ones, without touching the disk. Only durable
records are ever returned.
"""

from __future__ import annotations

import logging
import re
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import trio

from .files import fsync_directory, write_atomically
from .reader import JournalReader
from .record import Record
from .tail import SegmentTail

if TYPE_CHECKING:
    from ..hub import Hub

log = logging.getLogger("gatewayd.journal")

_CURSOR_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class CursorStore:
    """Named cursors, one small file each under `directory`, written atomically and fsynced."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, name: str) -> Path:
        if not _CURSOR_NAME.fullmatch(name):
            raise ValueError(f"cursor name {name[:70]!r}: lower-case letters, digits, '.', '_', '-'")
        return self.directory / f"{name}.seq"

    def load(self, name: str) -> int:
        """The saved seq, or 0 when the cursor does not exist (nothing handled yet)."""
        try:
            return int(self._path(name).read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def save(self, name: str, seq: int) -> None:
        """Blocking (write, fsync, rename): call from a worker thread, or use `asave`."""
        path = self._path(name)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomically(path, b"%d\n" % seq)

    async def asave(self, name: str, seq: int) -> None:
        await trio.to_thread.run_sync(self.save, name, seq)

    def remove(self, name: str) -> None:
        """Forget a reader: it no longer holds back compaction."""
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return
        fsync_directory(self.directory)

    def all(self) -> dict[str, int]:
        if not self.directory.is_dir():
            return {}
        cursors = {}
        for path in self.directory.glob("*.seq"):
            try:
                cursors[path.stem] = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                # An unreadable cursor must not let compaction run past it: treat it as "nothing read".
                cursors[path.stem] = 0
        return cursors

    def lowest(self) -> int | None:
        """The seq that compaction must keep every record after, or None when no cursor exists."""
        cursors = self.all()
        return min(cursors.values()) if cursors else None


class JournalFollower:
    """Durable records after `after_seq`, in seq order, in batches of at most `max_batch`."""

    def __init__(self, hub: "Hub", journal_dir: Path, after_seq: int, *, max_batch: int = 512):
        self._hub = hub
        self._reader = JournalReader(Path(journal_dir))
        self._tail = SegmentTail(Path(journal_dir))
        self.position = after_seq  # the last seq returned
        self.max_batch = max_batch
        self.skipped = 0  # records that were no longer in the journal when reached (compacted away)
        self._file_records: Iterator[Record] | None = None
        self._file_limit = 0

    async def next_batch(self) -> list[Record]:
        """Wait until at least one durable record follows the position, then return a batch."""
        while True:
            if self._hub.fanned_seq > self.position:
                batch = self._from_recent()
                if batch is None:
                    batch = await self._from_files()
                if batch:
                    first = batch[0].seq
                    if first > self.position + 1:  # compacted away, or a gap a repair accepted
                        self.skipped += first - self.position - 1
                        log.warning("journal follower: records %d to %d are not in the journal",
                                    self.position + 1, first - 1)
                    self.position = batch[-1].seq
                    return batch
            await self._hub.wait_fanned_past(self.position)

    def _from_recent(self) -> list[Record] | None:
        """From the hub's window, or None when the position is older than the window."""
        recent = self._hub.recent
        if not recent or recent[0].seq > self.position + 1:
            return None
        self._file_records = None  # caught up: a later fall-behind starts a fresh file read
        start = self.position + 1 - recent[0].seq
        if recent[-1].seq - recent[0].seq != len(recent) - 1:  # not consecutive: find the place
            start = next((i for i, r in enumerate(recent) if r.seq > self.position), len(recent))
        return list(islice(recent, start, start + self.max_batch))

    async def _from_files(self) -> list[Record]:
        fresh = self._file_records is None
        if fresh:
            position, limit = self.position, self._hub.fanned_seq
            batch = await trio.to_thread.run_sync(self._tail.read, position, limit, self.max_batch)
            if batch is not None:
                return batch
            self._file_limit = self._hub.fanned_seq
            self._file_records = self._reader.records(after_seq=self.position, until_seq=self._file_limit)
        records = self._file_records
        batch = await trio.to_thread.run_sync(lambda: list(islice(records, self.max_batch)))
        if len(batch) < self.max_batch:
            self._file_records = None  # it reached the limit it was opened with
        if not batch and fresh:
            # Nothing on disk between the position and what was durable when the read began.
            self.skipped += self._file_limit - self.position
            log.warning("journal follower: records %d to %d are not in the journal",
                        self.position + 1, self._file_limit)
            self.position = self._file_limit
        return batch

"""The journal writer: one task that appends batches of lines and fsyncs each batch once.

Publishers hand over encoded lines synchronously (`append`) and, when they need durability,
wait for the batch their line went into. While one batch is being written and synced in a worker
thread (from trio's thread cache), new lines gather in the next batch: one fsync covers everything
waiting at that moment (group commit). A batch holding only non-durable lines may wait up to
`flush_interval` to grow.

On a write error the batch stays queued and is retried with backoff; its waiters are told at once
(JournalUnavailable) instead of being acknowledged, and `failed` stays set until a write succeeds,
so callers can refuse new work meanwhile. Bytes of a failed attempt are truncated away before the
retry, so a line is never written twice.
"""

from __future__ import annotations

import errno
import logging
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import trio
from trio.lowlevel import (
    Abort, Task, checkpoint, checkpoint_if_cancelled, current_task, current_trio_token, reschedule,
    start_thread_soon, wait_task_rescheduled,
)

from .fileops import FileOps
from .files import fsync_directory, is_compressed, list_segments, segment_path
from .record import Record

if TYPE_CHECKING:
    import outcome

log = logging.getLogger("gatewayd.journal")


class JournalUnavailable(RuntimeError):
    """The journal cannot make records durable right now; the client should retry later."""


class Batch:
    """Lines that one write and one fsync make durable, and the publishers waiting for that.

    It parks its waiters itself (trio's lowlevel API) rather than through a trio.Event: a
    publisher's wait is then one trap instead of three nested coroutines."""

    __slots__ = ("settled", "error", "durable", "opened", "_waiters")

    def __init__(self) -> None:
        self.settled = False
        self.error: BaseException | str | None = None
        self.durable = False
        self.opened = time.monotonic()
        self._waiters: list[Task] = []

    async def wait(self) -> None:
        # No timeout here: the writer's stall watcher settles a batch that takes too long, which
        # costs one task instead of a cancel scope per waiting publisher.
        if self.settled:
            await checkpoint()
        else:
            task = current_task()
            self._waiters.append(task)

            def abort(_: object) -> Abort:
                self._waiters.remove(task)
                return Abort.SUCCEEDED

            await wait_task_rescheduled(abort)
        if self.error is not None:
            raise JournalUnavailable(f"journal write failed: {self.error}")

    def settle(self, error: BaseException | str | None = None) -> None:
        """Wake every waiter: durable when error is None, JournalUnavailable otherwise. Once only."""
        if self.settled:
            return
        self.settled = True
        self.error = error
        for task in self._waiters:
            reschedule(task)
        self._waiters.clear()

    def fail(self, error: BaseException | str) -> None:
        self.settle(error)

    @property
    def waiting(self) -> int:
        """How many publishers wait for this batch."""
        return len(self._waiters)


async def run_in_worker_thread(fn: Callable[..., None], *args: object) -> None:
    """trio.to_thread.run_sync(fn, *args) without its capacity limiter and context copy, which cost
    a third of the event loop's time per batch at low load. Cannot be abandoned either: a cancel
    takes effect once fn has returned. fn must not call back into trio (trio.from_thread)."""
    await checkpoint_if_cancelled()
    task = current_task()
    token = current_trio_token()

    def deliver(result: outcome.Outcome) -> None:
        token.run_sync_soon(reschedule, task, result)

    start_thread_soon(partial(fn, *args), deliver)
    await wait_task_rescheduled(lambda _: Abort.FAILED)


class JournalStats:
    __slots__ = ("appends", "batches", "bytes", "fsync_seconds", "fsync_max", "write_errors")

    def __init__(self) -> None:
        self.appends = 0
        self.batches = 0
        self.bytes = 0
        self.fsync_seconds = 0.0
        self.fsync_max = 0.0
        self.write_errors = 0


class JournalWriter:
    def __init__(
        self,
        directory: Path,
        *,
        next_seq: int,
        segment_bytes: int = 16 * 1024 * 1024,
        flush_interval: float = 0.1,
        commit_interval: float = 0.0,
        on_durable: Callable[[Sequence[Record], Sequence[bytes]], None] = lambda records, lines: None,
        fileops: FileOps | None = None,
        max_pending_bytes: int = 16 * 1024 * 1024,
        durable_timeout: float = 10.0,
    ):
        self.durable_timeout = durable_timeout
        self._in_flight: Batch | None = None
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.flush_interval = flush_interval
        self.commit_interval = commit_interval
        self._commits_shared = False  # did the last commit acknowledge more than one publisher?
        self.on_durable = on_durable
        self.ops = fileops or FileOps()
        self.max_pending_bytes = max_pending_bytes
        self.stats = JournalStats()
        self.failed: BaseException | None = None
        self.durable_seq = next_seq - 1
        self.last_progress = time.monotonic()
        self._lines: list[bytes] = []
        self._records: list[Record] = []
        self._pending_bytes = 0
        self._batch = Batch()
        self._wake = trio.Event()
        self._durable_wanted = trio.Event()
        self._space = trio.Event()
        self._closing = False
        self._close_requested = trio.Event()
        self._finished = trio.Event()
        self._fd: int | None = None
        self._size = 0
        self._open_segment(next_seq)

    # -- segment files ----------------------------------------------------------------------------
    def _open_segment(self, next_seq: int) -> None:
        segments = list_segments(self.directory)
        if segments and segments[-1][0] <= next_seq and not is_compressed(segments[-1][1]):
            path = segments[-1][1]
        else:
            path = segment_path(self.directory, next_seq)
        self.directory.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        self._fd = self.ops.open_append(path)
        self._size = self.ops.size(self._fd)
        self._segment = path
        if created:
            fsync_directory(self.directory)

    def _rotate(self, next_seq: int) -> None:
        old = self._fd
        self._segment = segment_path(self.directory, next_seq)
        self._fd = self.ops.open_append(self._segment)
        self._size = 0
        fsync_directory(self.directory)
        if old is not None:
            self.ops.close(old)

    # -- publishers' side ---------------------------------------------------------------------------
    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def append(self, record: Record, line: bytes, durable: bool) -> Batch:
        """Queue one encoded record. Never blocks; the caller awaits `batch.wait()` if durable."""
        if self._closing:
            raise JournalUnavailable("journal is closing")
        batch = self._batch
        if not self._lines:  # the stall watcher times a batch from its first line, not its creation
            batch.opened = time.monotonic()
        self._lines.append(line)
        self._records.append(record)
        self._pending_bytes += len(line)
        if durable and not batch.durable:
            batch.durable = True
            self._durable_wanted.set()
        self._wake.set()
        return batch

    async def wait_for_space(self) -> None:
        """Backpressure for publishers: wait while too much is queued."""
        while self._pending_bytes > self.max_pending_bytes:
            if self._space.is_set():
                self._space = trio.Event()
            await self._space.wait()

    # -- the writer task ----------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_stalls)
                await self._loop()
                nursery.cancel_scope.cancel()
        finally:
            self._finished.set()

    async def _watch_stalls(self) -> None:
        """Fail batches whose records are not durable within `durable_timeout` (a hung disk)."""
        while True:
            await trio.sleep(max(self.durable_timeout / 4, 0.01))
            now = time.monotonic()
            # The open batch counts only once it holds a line: an idle one is not late.
            for batch in (self._in_flight, self._batch if self._lines else None):
                if batch is not None and not batch.settled and now - batch.opened > self.durable_timeout:
                    batch.fail(f"not confirmed within {self.durable_timeout:g} s")

    async def _loop(self) -> None:
        backoff = 0.05
        pending: tuple[Batch, list[bytes], list[Record]] | None = None
        while True:
            self.last_progress = time.monotonic()
            if pending is None:
                if not self._lines:
                    if self._closing:
                        return
                    self._wake = trio.Event()
                    await self._wake.wait()
                    continue
                if not self._batch.durable and not self._closing and self.flush_interval > 0:
                    self._durable_wanted = trio.Event()
                    with trio.move_on_after(self.flush_interval):
                        await self._durable_wanted.wait()
                await self._gather_for_commit()
                pending = (self._batch, self._lines, self._records)
                self._batch, self._lines, self._records = Batch(), [], []
            batch, lines, records = pending
            if batch.durable:
                self._commits_shared = batch.waiting > 1
            self._in_flight = batch
            data = b"".join(lines)
            try:
                await run_in_worker_thread(self._write_sync, data, records[0].seq)
            except OSError as exc:
                self.stats.write_errors += 1
                if self.failed is None:
                    log.error("journal write failed (%s); not acknowledging until writes succeed",
                              errno.errorcode.get(exc.errno or 0, exc))
                self.failed = exc
                if not batch.settled:
                    batch.fail(exc)
                    pending = (Batch(), lines, records)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if self.failed is not None:
                log.warning("journal writes succeed again; acknowledging resumes")
                self.failed = None
            backoff = 0.05
            pending = None
            self._pending_bytes -= len(data)
            self.durable_seq = records[-1].seq
            self.stats.appends += len(records)
            self.stats.batches += 1
            self.stats.bytes += len(data)
            if self._pending_bytes <= self.max_pending_bytes:
                self._space.set()
            try:
                self.on_durable(records, lines)
            finally:
                batch.settle()

    async def _gather_for_commit(self) -> None:
        """Let a durable batch gather records for up to `commit_interval` from its first one.

        Each fdatasync of an appended file rewrites at least one whole page (and the file system's
        own metadata): on an SD card, fewer and fuller commits are what saves the card. Nobody is
        acknowledged before the commit, so this trades acknowledgement latency for write volume."""
        if self.commit_interval <= 0 or self._closing or not self._commits_shared:
            return  # a lone publisher (one device sending in turn) gets no company by waiting
        remaining = self._batch.opened + self.commit_interval - time.monotonic()
        if remaining > 0:
            with trio.move_on_after(remaining):
                await self._close_requested.wait()

    def _write_sync(self, data: bytes, first_seq: int) -> None:
        if self._size >= self.segment_bytes:
            self._rotate(first_seq)
        fd = self._fd
        start = self._size
        try:
            view = memoryview(data)
            while view:
                view = view[self.ops.write(fd, view):]
            began = time.perf_counter()
            self.ops.sync(fd)
            took = time.perf_counter() - began
        except OSError:
            try:
                self.ops.truncate(fd, start)
            except OSError:
                pass
            raise
        self._size = start + len(data)
        self.stats.fsync_seconds += took
        if took > self.stats.fsync_max:
            self.stats.fsync_max = took

    async def close(self, timeout: float = 3.0) -> bool:
        """Write out everything queued, then let `run` return. True if all of it is durable."""
        self._closing = True
        self._close_requested.set()
        self._durable_wanted.set()
        self._wake.set()
        with trio.move_on_after(timeout):
            await self._finished.wait()
        done = not self._lines and self.failed is None
        if not done:
            log.error("journal closed with %d records not written", len(self._records))
        return done

    def close_files(self) -> None:
        if self._fd is not None:
            self.ops.close(self._fd)
            self._fd = None

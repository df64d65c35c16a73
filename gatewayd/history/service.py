"""The history projection: feeds the store from the journal and answers queries from it.

- At start (`open`), before anything is served: the store is opened (a damaged one is set aside
  and rebuilt), punches and telemetry an earlier version kept in the snapshot are imported, and the
  store catches up with the journal. From then on the store is never behind the model for longer
  than one commit, which is what lets attendance dedup keep only the not-yet-stored keys in memory.
- While running (`run`): a journal follower hands durable records over in seq order; they are
  applied in one transaction at most every `history.commit_interval` seconds by a worker thread,
  the applied seq stored in the same transaction. The seq is also saved as the journal cursor
  "history", so compaction keeps every segment the store has not applied.
- Queries wait (briefly) for the store to hold every durable record, asking for an early commit:
  what a client was acknowledged is what it reads.
- A store SQLite calls damaged is set aside and rebuilt from the journal while the daemon runs;
  meanwhile queries and punch dedup answer "unavailable, retry" rather than guess.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from typing import Any, Callable, Collection

import trio

from ..gctune import release_free_memory
from ..journal.files import list_segments
from ..journal.follow import JournalFollower
from ..journal.writer import JournalUnavailable
from . import catch_up as catching_up, queries, retention, schema
from .writer import HistoryWriter, open_writer

log = logging.getLogger("gatewayd.history")

CURSOR = "history"
MAX_PENDING = 20_000          # records gathered for one commit at most
RETENTION_SECONDS = 3600.0
QUERY_WAIT_SECONDS = 5.0


class HistoryUnavailable(JournalUnavailable):
    """The history store cannot answer right now (being rebuilt, or behind); retry later."""


class _Damaged(Exception):
    pass


class _Pending:
    """Records taken for the next commit (only those the store keeps) with their journal lines
    where the hub handed them over (None: read from the files), and the seq read up to."""

    def __init__(self, position: int):
        self.records: list = []
        self.lines: list = []
        self.until = position
        self.arrived = trio.lowlevel.ParkingLot()
        self.taken = trio.lowlevel.ParkingLot()

    def add(self, records: list, until: int) -> None:
        self.records.extend(records)
        self.lines.extend([None] * len(records))
        self.until = until
        self.arrived.unpark_all()

    def take(self) -> tuple[list, list, int]:
        records, lines = self.records, self.lines
        self.records, self.lines = [], []
        self.taken.unpark_all()
        return records, lines, self.until

    async def room(self) -> None:
        while len(self.records) >= MAX_PENDING:
            await self.taken.park()

    def drain(self, receive, hub) -> bool:
        """Move what the subscription holds over, as far as there is room. Returns True when the
        subscription has ended (it overflowed) and everything it held is here."""
        records, lines = self.records, self.lines
        room = MAX_PENDING - len(records)
        until, ended = self.until, False
        while room > 0:
            try:
                record, line = receive.receive_nowait()
            except trio.WouldBlock:  # every durable record has been offered: the store has seen them all
                until = max(until, hub.fanned_seq)
                break
            except trio.EndOfChannel:
                ended = True
                break
            records.append(record)
            lines.append(line)
            until = record.seq
            room -= 1
        if until != self.until:
            self.until = until
            self.arrived.unpark_all()
        return ended


def _first_journal_seq(journal_dir) -> int | None:
    """The seq the journal's oldest segment starts at (None: no segment)."""
    segments = list_segments(journal_dir)
    return segments[0][0] if segments else None


def _is_damage(exc: BaseException) -> bool:
    """SQLite's own verdict on the file (malformed, not a database), as opposed to a full disk or a lock."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


class HistoryService:
    def __init__(self, core, comm_mapper: Callable | None = None, comm_types: Collection[str] | None = None):
        self.core = core
        self.path = schema.store_path(core.settings.state_path)
        # Set by the monitoring connector: how records render as communications, and which record types do.
        self.comm_mapper = comm_mapper
        self.comm_types = comm_types
        self.writer: HistoryWriter | None = None
        self.reader: sqlite3.Connection | None = None
        self.position = 0
        self.ready = False
        self.running = False
        self._advanced = trio.lowlevel.ParkingLot()
        self._flush_requested = False
        self._flush_target = 0  # a query waits for the store to reach this seq
        self._wait_scope: trio.CancelScope | None = None
        self._damage: str | None = None  # why the worker must rebuild the store
        self._requested = False  # ... because an operator asked
        self.commits = 0
        self.records_applied = 0
        self.rebuilds = 0
        self.last_error: str | None = None
        m = core.metrics
        m.gauge("gatewayd_history_seq", "Last journal seq applied to the history store.", lambda: self.position)
        m.gauge("gatewayd_history_commits_total", "History store commits.", lambda: self.commits)
        m.gauge("gatewayd_history_wal_bytes_total", "Bytes the history store's commits wrote to its WAL.",
                lambda: self.writer.wal_bytes if self.writer is not None else 0)
        m.gauge("gatewayd_history_checkpoint_bytes_total",
                "Bytes checkpoints copied from the history store's WAL into its database file (at most).",
                lambda: self.writer.checkpoint_bytes if self.writer is not None else 0)
        m.gauge("gatewayd_history_rebuilds_total", "History store rebuilds (damage or request).", lambda: self.rebuilds)

    # -- start ------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Open (or rebuild) the store and catch up with every record replayed. Before serving."""
        state = self.core.state
        attendance, devices = state.parts.get("attendance"), state.parts.get("devices")
        legacy_punches = getattr(attendance, "legacy", None)
        legacy_telemetry = getattr(devices, "legacy_telemetry", None)
        started = time.monotonic()
        try:
            await trio.to_thread.run_sync(self._open_blocking, state.seq, legacy_punches, legacy_telemetry)
            caught_up = await self._catch_up(state.seq)
        except sqlite3.OperationalError as exc:  # a full disk, an I/O error: start anyway, retry in run()
            self._close_connections()
            self.last_error = str(exc)
            log.error("history store: cannot open %s (%s); queries and punches get a retryable error until it "
                      "opens", self.path, exc)
            return
        if attendance is not None:
            attendance.legacy = None
        if devices is not None:
            devices.legacy_telemetry = None
        self._opened()
        if caught_up:
            log.info("history store: caught up %d records in %.1f s (now at seq %d)",
                     caught_up, time.monotonic() - started, self.position)
        await self.core.cursors.asave(CURSOR, self.position)

    def _close_connections(self) -> None:
        for conn in (self.reader, self.writer.conn if self.writer else None):
            if conn is not None:
                conn.close()
        self.reader = self.writer = None
        self.ready = False

    async def _reopen(self) -> None:
        """run(): until the store opens (after a failed open at start), try again now and then."""
        delay = 1.0
        while True:
            await trio.sleep(delay)
            await self.open()
            if self.ready:
                return
            delay = min(delay * 2, 30.0)

    def _opened(self) -> None:
        self.reader = schema.connect(self.path)
        self.ready = True
        self._advance(self.writer.position)

    def _open_blocking(self, until_seq: int, legacy_punches: dict | None, legacy_telemetry: dict | None) -> int:
        try:
            self.writer = open_writer(self.path, self.comm_mapper, self.comm_types)
            if self.writer.position > until_seq:
                raise _Damaged(f"the store is at seq {self.writer.position}, past the journal's {until_seq}")
        except (sqlite3.DatabaseError, _Damaged) as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise
            self._set_aside(str(exc))
            self.writer = open_writer(self.path, self.comm_mapper, self.comm_types)
        if legacy_punches or legacy_telemetry:
            self._import_legacy(legacy_punches, legacy_telemetry)

    def _set_aside(self, reason: str, damaged: bool = True) -> None:
        """Move the store out of the way: a damaged one is kept beside it (one copy) for a post-mortem."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        self.rebuilds += 1
        kept = self.path.with_name(self.path.name + ".damaged")
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            target = kept.with_name(kept.name + suffix)
            if source.exists() and damaged:
                source.replace(target)
            else:
                source.unlink(missing_ok=True)
                if damaged:
                    target.unlink(missing_ok=True)
        if damaged:
            log.error("history store %s is not usable (%s): kept as %s, rebuilding it from the journal",
                      self.path, reason, kept.name)

    def _import_legacy(self, punches: dict | None, telemetry: dict | None) -> None:
        writer = self.writer
        writer.conn.execute("BEGIN IMMEDIATE")
        try:
            if punches:
                fields = punches["fields"]
                added = writer.import_punches((dict(zip(fields, row)) for row in punches["rows"]),
                                              punches["next_id"])
                if added:
                    log.info("history store: imported %d punches from the snapshot", added)
            if telemetry:
                writer.import_telemetry(telemetry, _first_journal_seq(self.core.journal_dir))
            writer.conn.execute("COMMIT")
        except BaseException:
            writer.conn.execute("ROLLBACK")
            writer.reload()
            raise

    def catch_up(self, until_seq: int) -> int:
        """Blocking: apply the journal's records after the store's position up to `until_seq`."""
        applied = catching_up.apply_journal(self.writer, self.core.journal_dir, until_seq)
        self.records_applied += applied
        return applied

    async def _catch_up(self, until_seq: int) -> int:
        """Bring the open store to `until_seq`: a long stretch in a child process (see catch_up.py),
        then the rest, or all of it, in a worker thread. Returns how many seqs the store moved past."""
        before = self.writer.position
        # The child stores communications by type; a mapper without its list of types is asked per record.
        if catching_up.worth_a_child(until_seq - before) and (self.comm_mapper is None or self.comm_types is not None):
            await trio.to_thread.run_sync(self._close_writer)
            lock = self.core.journal_lock
            await catching_up.run_child(self.path, self.core.journal_dir, until_seq,
                                        None if self.comm_mapper is None else self.comm_types,
                                        lock_fd=None if lock is None else lock.fileno())
            self.writer = await trio.to_thread.run_sync(open_writer, self.path, self.comm_mapper, self.comm_types)
            self.records_applied += self.writer.position - before
            log.info("history store: %d records applied by a child process", self.writer.position - before)
        await trio.to_thread.run_sync(self.catch_up, until_seq)
        return self.writer.position - before

    def _close_writer(self) -> None:
        self.writer.close()
        self.writer = None

    # -- live -------------------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        task_status.started()
        try:
            if not self.ready:
                await self._reopen()
            while True:
                try:
                    await self._follow()
                except _Damaged as exc:
                    requested, self._requested = self._requested, False
                    await self.rebuild(str(exc), damaged=not requested)
        finally:
            self.running = False
            self._advanced.unpark_all()
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self.core.cursors.asave(CURSOR, self.position)

    async def _follow(self) -> None:
        """Collect durable records while the previous batch is being written, commit them now and then."""
        pending = _Pending(self.position)
        damaged: _Damaged | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._collect, pending)
            try:
                await self._commit_pending(pending)
            except _Damaged as exc:
                damaged = exc
            nursery.cancel_scope.cancel()
        if damaged is not None:
            raise damaged

    async def _collect(self, pending: "_Pending") -> None:
        """Hand the committer every durable record the store keeps, in seq order.

        The hub offers each record to a subscription as it becomes durable, also while a commit
        runs in the worker thread, so the store keeps up without reading the journal again. What
        was durable before the subscription comes from the hub's window or the journal files. The
        subscription holds MAX_PENDING records at most: a store that falls further behind loses it
        and reads the files until it has caught up."""
        hub = self.core.hub
        wants = self.writer.wants

        def keep(record) -> bool:
            return wants(record.type)

        while True:
            with hub.subscribe(MAX_PENDING, keep, lines=True) as subscription:
                follower = JournalFollower(hub, self.core.journal_dir, pending.until)
                while pending.until < subscription.start_after:
                    await pending.room()
                    batch = await follower.next_batch()
                    limit = subscription.start_after
                    pending.add([r for r in batch if r.seq <= limit and wants(r.type)], min(batch[-1].seq, limit))
                while not pending.drain(subscription.receive, hub):
                    await pending.room()
                    await hub.wait_fanned_past(pending.until)

    async def _commit_pending(self, pending: "_Pending") -> None:
        settings = self.core.settings.history
        last_commit = -float("inf")
        # Retention runs now and then after a commit, by the system's clock: an idle daemon has
        # nothing to wake up for (and a test's mock clock is not driven by it).
        next_retention = 0.0
        while True:
            if time.monotonic() >= next_retention:
                await self._enforce_retention()
                next_retention = time.monotonic() + RETENTION_SECONDS
            while self._damage is None and pending.until <= self.position:
                await self._wait(pending, math.inf)
            deadline = max(trio.current_time(), last_commit + settings.commit_interval)
            while (self._damage is None and len(pending.records) < MAX_PENDING and trio.current_time() < deadline
                   and not (self._flush_requested and pending.until >= self._flush_target)):
                await self._wait(pending, deadline)
            if self._damage is not None:
                raise _Damaged(self._damage)
            records, lines, until = pending.take()
            await self._commit(records, until, lines)
            last_commit = trio.current_time()
            await self.core.cursors.asave(CURSOR, self.position)

    async def _wait(self, pending: "_Pending", deadline: float) -> None:
        """Until records arrive, the deadline passes, or a query or a rebuild needs the worker."""
        with trio.CancelScope(deadline=deadline) as scope:
            self._wait_scope = scope
            try:
                await pending.arrived.park()
            finally:
                self._wait_scope = None

    async def _commit(self, records: list, until_seq: int, lines: list) -> None:
        self._flush_requested = False
        before = self.position
        delay = 0.5
        while True:
            try:
                position = await trio.to_thread.run_sync(self.writer.apply, records, until_seq, lines)
                break
            except sqlite3.DatabaseError as exc:
                if _is_damage(exc):
                    raise _Damaged(str(exc)) from None
                if self.last_error != str(exc):
                    log.error("history store: cannot write (%s); retrying, the journal keeps the records", exc)
                self.last_error = str(exc)
                await trio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.last_error = None
        self.commits += 1
        self.records_applied += position - before
        self._advance(position)

    def _advance(self, position: int) -> None:
        self.position = position
        attendance = self.core.state.parts.get("attendance")
        if attendance is not None:
            attendance.forget_until(position)
        self._advanced.unpark_all()

    async def _enforce_retention(self) -> None:
        policy = retention.RetentionPolicy.from_settings(self.core.settings)
        now_us = time.time_ns() // 1000
        try:
            dropped = await trio.to_thread.run_sync(retention.enforce, self.writer, policy, now_us)
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                raise _Damaged(str(exc)) from None
            log.error("history store: retention failed (%s); trying again later", exc)
            return
        for drop in dropped:
            log.warning("history store over history.max_bytes: dropped data before %s (%s)", drop["before"],
                        drop["rows"])
            await self.core.hub.publish("history.dropped", {"reason": "max_bytes", **drop}, durable=False)

    async def rebuild(self, reason: str, damaged: bool = True) -> dict[str, Any]:
        """Set the store aside and build it again from the journal (as far back as the journal goes)."""
        self.ready = False
        started = time.monotonic()
        until = self.core.hub.fanned_seq

        def build() -> None:
            self._set_aside(reason, damaged)
            self.writer = open_writer(self.path, self.comm_mapper, self.comm_types)

        await trio.to_thread.run_sync(build)
        applied = await self._catch_up(until)
        release_free_memory()  # what reading the journal again freed
        self._damage = None
        self._opened()
        await self.core.cursors.asave(CURSOR, self.position)
        seconds = time.monotonic() - started
        log.warning("history store rebuilt from the journal: %d records in %.1f s", applied, seconds)
        return {"records": applied, "seconds": round(seconds, 3), "seq": self.position}

    # -- reading ----------------------------------------------------------------------------------
    def report_damage(self, exc: BaseException) -> None:
        """A reader met a damaged file: the worker rebuilds it."""
        if self._damage is None:
            self._damage = str(exc)
            log.error("history store: damage found while reading (%s)", exc)
        self.ready = False
        self._wake_committer()

    def _wake_committer(self) -> None:
        self._flush_requested = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    async def request_rebuild(self, reason: str = "requested by an operator") -> dict[str, Any]:
        """Rebuild now: by the worker when the daemon runs, else here."""
        if not self.running:
            return await self.rebuild(reason, damaged=False)
        before = self.rebuilds
        self._requested = True
        self._damage = reason
        self.ready = False
        self._wake_committer()
        while self.rebuilds == before or not self.ready:
            await self._advanced.park()
        return {"seq": self.position, "rebuilt": True}

    async def wait_applied(self, seq: int | None = None, timeout: float = QUERY_WAIT_SECONDS) -> None:
        """Return once the store holds every record up to `seq` (default: every durable record)."""
        target = self.core.hub.fanned_seq if seq is None else seq
        if self.ready and self.position >= target:
            return
        if not self.running and self.ready:  # offline command line: nobody else feeds the store
            await trio.to_thread.run_sync(self.catch_up, target)
            self._advance(self.writer.position)
            await self.core.cursors.asave(CURSOR, self.position)
            return
        self._flush_target = max(self._flush_target, target)
        self._wake_committer()
        with trio.move_on_after(timeout):
            while not (self.ready and self.position >= target):
                await self._advanced.park()
        if not (self.ready and self.position >= target):
            raise HistoryUnavailable("the history store is being rebuilt or is behind; retry later")

    def read(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a query function on the reading connection; damage becomes HistoryUnavailable."""
        if not self.ready or self.reader is None:
            raise HistoryUnavailable("the history store is being rebuilt; retry later")
        try:
            return fn(self.reader, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                self.report_damage(exc)
            raise HistoryUnavailable(f"the history store cannot be read: {exc}") from None

    def open_reader(self) -> sqlite3.Connection:
        """A connection of its own, for a long read (an export) that must not hold the shared one."""
        if not self.ready:
            raise HistoryUnavailable("the history store is being rebuilt; retry later")
        return schema.connect(self.path, readonly=True)

    def stored_punches(self, source: str, keys: list[tuple[int, str, int, int]]) -> dict[tuple, tuple[int, bool]]:
        """(seq, held) by dedup key (enrollid, key_time, inout, event) of the stored punches among `keys`."""
        return self.read(queries.punch_seqs, source, keys) if keys else {}

    def close(self) -> None:
        self._close_connections()

"""publish(): journal -> state -> fan-out, and subscriptions with bounded queues."""

from __future__ import annotations

import logging
from collections import deque
from itertools import repeat
from typing import Any, Callable, Sequence

import trio

from .journal.record import Record, encode_line, utc_now_iso
from .journal.writer import Batch, JournalUnavailable, JournalWriter
from .state import State

log = logging.getLogger("gatewayd.hub")


class Subscription:
    """A bounded queue of durable records (with `lines`: (record, its journal line) pairs).
    Overflow ends it: the consumer must resume with `since`."""

    def __init__(self, hub: "Hub", size: int, accept: Callable[[Record], bool] | None, lines: bool = False):
        self._hub = hub
        self._send, self.receive = trio.open_memory_channel[Any](size)
        self._accept = accept
        self._lines = lines
        self.overflowed = False
        # Everything up to this seq was fanned out before we joined; it is in the journal files.
        self.start_after = hub.fanned_seq

    def offer(self, record: Record, line: bytes | None = None) -> None:
        if self._accept is not None and not self._accept(record):
            return
        try:
            self._send.send_nowait((record, line) if self._lines else record)
        except trio.WouldBlock:
            self.overflowed = True
            self.close()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.close()

    def close(self) -> None:
        self._hub._subscribers.discard(self)
        self._send.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
        self.receive.close()


# How many of the newest durable records stay in memory for journal followers that keep up.
RECENT_RECORDS = 1024


class Hub:
    def __init__(self, state: State, writer: JournalWriter, *, durable_timeout: float = 10.0):
        self.state = state
        self.writer = writer
        self.durable_timeout = durable_timeout
        writer.durable_timeout = durable_timeout
        self.next_seq = state.seq + 1
        self.fanned_seq = state.seq
        self._subscribers: set[Subscription] = set()
        self.recent: deque[Record] = deque(maxlen=RECENT_RECORDS)
        self._fanned = trio.lowlevel.ParkingLot()
        writer.on_durable = self._fan_out

    def _record(self, type_: str, data: dict[str, Any]) -> tuple[Record, bytes]:
        if self.writer.failed is not None:
            raise JournalUnavailable(f"journal cannot write: {self.writer.failed}")
        seq = self.next_seq
        record = Record(seq, utc_now_iso(), type_, data)
        line = encode_line(record)  # before apply: a record that cannot be written never happened
        self.state.apply(record)
        self.next_seq = seq + 1
        return record, line

    async def publish(self, type_: str, data: dict[str, Any], *, durable: bool = True) -> Record:
        """Append a record and apply it. With durable=True, return only once it is fsynced."""
        if self.crowded:
            await self.wait_for_room()
        record, line = self._record(type_, data)
        batch = self.writer.append(record, line, durable)
        if durable:
            await batch.wait()
        return record

    @property
    def crowded(self) -> bool:
        """Too much is waiting to be written: publishers wait (`wait_for_room`) before appending."""
        return self.writer.pending_bytes > self.writer.max_pending_bytes

    async def wait_for_room(self) -> None:
        with trio.fail_after(self.durable_timeout):
            await self.writer.wait_for_space()

    def append(self, type_: str, data: dict[str, Any], durable: bool) -> Batch:
        """`publish` without its waits, for a caller that handles many messages in one turn: append
        and apply a record now; await the returned batch's `wait()` for durability. The caller
        checks `crowded` (and waits for room) first."""
        record, line = self._record(type_, data)
        return self.writer.append(record, line, durable)

    def publish_nowait(self, type_: str, data: dict[str, Any]) -> Record:
        """Non-durable publish for places that cannot await (e.g. cleanup after cancellation)."""
        record, line = self._record(type_, data)
        self.writer.append(record, line, durable=False)
        return record

    async def publish_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[Record]:
        """Several records, one durability wait: they land in the same or consecutive batches."""
        records = []
        batch = None
        for type_, data in items:
            record, line = self._record(type_, data)
            batch = self.writer.append(record, line, True)
            records.append(record)
        if batch is not None:
            await batch.wait()
        return records

    def subscribe(self, size: int = 1000, accept: Callable[[Record], bool] | None = None, *,
                  lines: bool = False) -> Subscription:
        """Durable records from now on; with `lines`, each with its journal line (bytes)."""
        subscription = Subscription(self, size, accept, lines)
        self._subscribers.add(subscription)
        return subscription

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _fan_out(self, records: Sequence[Record], lines: Sequence[bytes] | None = None) -> None:
        if self._subscribers:
            subscribers = list(self._subscribers)
            for record, line in zip(records, lines if lines is not None else repeat(None)):
                for subscription in subscribers:
                    subscription.offer(record, line)
        self.recent.extend(records)
        self.fanned_seq = records[-1].seq
        if self._fanned:
            self._fanned.unpark_all()

    async def wait_fanned_past(self, seq: int) -> None:
        """Wait until a record after `seq` is durable (and fanned out)."""
        while self.fanned_seq <= seq:
            await self._fanned.park()

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


class SubscriptionQueue:
    """The receive side of a subscription (`Subscription.receive`): receive(), receive_nowait(),
    `async for` and close(), as a trio memory channel's receive side offers them, but filled by
    the hub a durable batch at a time, so a batch costs its subscriber one append and at most one
    wakeup, not a channel send per record."""

    __slots__ = ("_items", "_waiting", "_ended", "_closed")

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._waiting = trio.lowlevel.ParkingLot()
        self._ended = False  # the hub closed its side: what is queued can still be read
        self._closed = False  # this side was closed: nothing more to read

    def receive_nowait(self) -> Any:
        if self._closed:
            raise trio.ClosedResourceError
        if self._items:
            return self._items.popleft()
        if self._ended:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> Any:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            value = self.receive_nowait()
        except trio.WouldBlock:
            while not (self._items or self._ended or self._closed):
                await self._waiting.park()  # (no timeout: a batch, the end or a close wakes it)
            return self.receive_nowait()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return value

    def __aiter__(self) -> "SubscriptionQueue":
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        if self._waiting:
            self._waiting.unpark_all()

    def _end(self) -> None:
        self._ended = True
        if self._waiting:
            self._waiting.unpark_all()


class Subscription:
    """A bounded queue of durable records (with `lines`: (record, its journal line) pairs).
    Overflow ends it: the consumer must resume with `since`."""

    def __init__(self, hub: "Hub", size: int, accept: Callable[[Record], bool] | None, lines: bool = False):
        self._hub = hub
        self.receive = SubscriptionQueue()
        # A consumer waiting on an empty queue takes one item on top (as with a trio memory channel).
        self._size = size
        self._accept = accept
        self._lines = lines
        self.overflowed = False
        # Everything up to this seq was fanned out before we joined; it is in the journal files.
        self.start_after = hub.fanned_seq

    def offer(self, records: Sequence[Record], lines: Sequence[bytes] | None = None) -> None:
        """Queue the records this subscription accepts, in order; those past its size end it."""
        queue = self.receive
        if queue._closed or queue._ended:
            self.close()
            return
        accept = self._accept
        if self._lines:
            pairs = zip(records, lines if lines is not None else repeat(None))
            items = list(pairs) if accept is None else [pair for pair in pairs if accept(pair[0])]
        else:
            items = records if accept is None else [record for record in records if accept(record)]
        if not items:
            return
        queued = queue._items
        room = self._size - len(queued) + (1 if queue._waiting and not queued else 0)
        if len(items) > room:
            queued.extend(items[:room])
            self.overflowed = True
            self.close()
            return
        queued.extend(items)
        if queue._waiting:
            queue._waiting.unpark_all()

    def close(self) -> None:
        self._hub._subscribers.discard(self)
        self.receive._end()

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
            for subscription in list(self._subscribers):
                subscription.offer(records, lines)
        self.recent.extend(records)
        self.fanned_seq = records[-1].seq
        if self._fanned:
            self._fanned.unpark_all()

    async def wait_fanned_past(self, seq: int) -> None:
        """Wait until a record after `seq` is durable (and fanned out)."""
        while self.fanned_seq <= seq:
            await self._fanned.park()

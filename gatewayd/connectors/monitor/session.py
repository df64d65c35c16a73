"""One monitoring client's feed: the records of its filter, read at its own cursor from a list shared
with every session of the same filter, replayed from the journal first when it asked for `since`,
and written in batches at a bounded pace. A session that falls too far behind is dropped
(SlowConsumer) and resumes with `since`."""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import deque
from datetime import tzinfo
from itertools import islice
from math import inf
from typing import Awaitable, Callable, Iterable, Iterator, Sequence

import trio

from ...journal.reader import CorruptJournal, JournalReader
from ...journal.record import Record
from ...web.wsframe import SharedText
from .resiot import StreamFilter
from .streams import StreamKind

log = logging.getLogger("gatewayd.monitor")

REPLAY_CHUNK = 512  # records read and rendered per worker-thread call
CATCH_UP_SLACK = 256  # join the live stream once the replay is this close to it
BATCH_ITEMS = 512  # queued items per write
BATCH_BYTES = 256 * 1024  # text per write, so a batch of big frames stays a modest buffer
TRIM_AFTER = 1024  # appends to a feed between trims at least (unless a quarter of its limit is less)

Send = Callable[[Sequence[SharedText]], Awaitable[None]]  # writes frames in order, each one message
SendFrames = Callable[[bytes], Awaitable[None]]  # writes encoded WebSocket frames as they are
# A feed holds (seq, frames, their size) for records; a session's replies are (None, [frame], size).
Item = tuple[int | None, list[SharedText], int]


class SlowConsumer(Exception):
    """The session fell behind its queue. `resume_seq` is what to pass as `since` to go on."""

    def __init__(self, resume_seq: int):
        super().__init__(f"too slow; resume with since={resume_seq}")
        self.resume_seq = resume_seq


class ReplayFailed(Exception):
    """The journal could not be read back (damage): the session cannot promise no gap."""


# -- sessions ---------------------------------------------------------------------------------------------
def queue_item(seq: int | None, frames: list[SharedText]) -> Item:
    if len(frames) == 1:  # the common case, without a generator
        return seq, frames, len(frames[0].text)
    return seq, frames, sum(len(frame.text) for frame in frames)


class Feed:
    """The frames one filter selects, in record order, shared by every session with that filter.

    Each session reads at its own cursor (an absolute position: `base` is the position of
    items[0]). The broadcaster appends once per record, whatever the number of sessions. Now and
    then (every limit/4 appends at most), what every session has read is trimmed, and so is what
    is more than `limit` items old: a session still behind that has lost its place (too slow) and
    is dropped. So a feed holds at most limit + limit/4 items. While its sessions keep up it holds
    few (a trim comes TRIM_AFTER appends after one that left the feed nearly empty, and at most a
    quarter of what a trim kept later: each trim's work stays in proportion to the appends before
    it), so a large monitor.queue_size costs memory only while a session lags.

    The feed also keeps every item's WebSocket frames as one bytes object (the frame a record's
    SharedText encoded already, for the usual item of one frame) and their offsets in the stream
    of all of them (`_starts`), so a session whose client negotiated no extension sends many
    records as one join of those, with no work per record. (A growing buffer they were copied
    into cost more: its reallocations and fresh pages.)"""

    def __init__(self, limit: int):
        self.items: list[Item] = []
        self.base = 0
        self.limit = limit
        self.sessions: list["Session"] = []
        self.waiting: list[trio.Event] = []  # writers that have read everything
        self._frames: list[bytes] = []  # each item's frames
        self._starts: list[int] = []  # the absolute offset of each item's frames
        self._frames_end = 0  # the absolute offset after the last item's frames
        self._next_trim = self._trim_interval()  # trims look at every session, so only now and then

    @property
    def end(self) -> int:
        return self.base + len(self.items)

    def append(self, item: Item) -> None:
        self.items.append(item)
        frames = item[1]
        data = frames[0].frame if len(frames) == 1 else b"".join([frame.frame for frame in frames])
        self._frames.append(data)
        self._starts.append(self._frames_end)
        self._frames_end += len(data)
        if len(self.items) >= self._next_trim:
            self._trim()
        if self.waiting:
            for event in self.waiting:
                event.set()
            self.waiting.clear()

    def _trim(self) -> None:
        slowest = min((session.cursor for session in self.sessions), default=self.end)
        keep_from = max(slowest, self.end - self.limit)
        if slowest < keep_from:
            for session in list(self.sessions):
                if session.cursor < keep_from:
                    session.drop()  # at once: its writer may be stuck in a send to a stalled peer
        cut = keep_from - self.base
        del self.items[:cut]
        del self._frames[:cut]
        del self._starts[:cut]
        self.base = keep_from
        self._next_trim = len(self.items) + self._trim_interval()

    def _trim_interval(self) -> int:
        return min(self.limit // 4, max(TRIM_AFTER, len(self.items) // 4)) + 1

    def read(self, cursor: int, count: int) -> list[Item]:
        start = cursor - self.base
        return self.items[start:start + count]

    def seq_at(self, cursor: int) -> int:
        return self.items[cursor - self.base][0]

    def read_frames(self, cursor: int, count: int, size: int) -> tuple[bytes, int, int]:
        """The frames of up to `count` items from `cursor`, at most `size` bytes unless one item
        alone is larger, as one buffer; and how many items that is, and the last one's seq."""
        first = cursor - self.base
        last = min(len(self.items), first + count)  # exclusive
        limit = self._starts[first] + size
        if self._offset(last) > limit:
            last = max(first + 1, bisect_right(self._starts, limit, first + 1, last) - 1)
        return b"".join(self._frames[first:last]), last - first, self.items[last - 1][0]

    def _offset(self, index: int) -> int:
        """The absolute offset of item `index`'s frames (relative index; len(items): the end)."""
        return self._starts[index] if index < len(self._starts) else self._frames_end


class Session:
    """One monitoring client's feed. `run(send)` delivers frames until the client is too slow
    (SlowConsumer) or the caller cancels it; `reply(text)` queues an answer to a client request.

    Live, the session reads its filter's shared feed from its cursor; replies wait in a small
    queue of their own, each marked with the feed position it was made at, so records and replies
    go out in the order they happened. The writer is woken only when it waits with nothing left
    to send; it takes everything new (up to a batch) and sends it in one go."""

    def __init__(self, service, kind: StreamKind, flt: StreamFilter | None,
                 since: int | None, queue_size: int):
        self.service = service
        self.kind = kind
        self.filter = flt
        self.since = since
        self._queue_size = queue_size
        self._feed: Feed | None = None
        self.cursor = 0  # the next feed position to send
        self._replies: deque[tuple[int, Item]] = deque()  # (feed position when made, item)
        self._wakeup: trio.Event | None = None  # set while the writer waits with nothing to send
        self._last_write = -inf
        self._closed = False
        self.delivered_seq = since - 1 if since is not None else None  # the last record fully sent
        self.overflowed = False
        self._broadcast = service.broadcasts[kind.name]

    # broadcaster and reader side (synchronous, never blocks) -----------------------------------
    def reply(self, text: str) -> None:
        if self.overflowed or self._closed:
            return
        if len(self._replies) >= self._queue_size:
            self.drop()
            return
        position = self._feed.end if self._feed is not None else 0
        self._replies.append((position, queue_item(None, [SharedText(text)])))
        if self._wakeup is not None:
            self._wakeup.set()

    def drop(self) -> None:
        """Too slow (or the broadcaster lost its place): stop reading; `run` raises SlowConsumer."""
        self.overflowed = True
        self._leave()
        if self._wakeup is not None:
            self._wakeup.set()

    def _leave(self) -> None:
        if self._feed is not None:
            self._broadcast.leave(self, self._feed)
            self._feed = None

    def close(self) -> None:
        self._leave()
        self._closed = True
        self._replies.clear()

    def resume_seq(self) -> int:
        if self.delivered_seq is not None:
            return self.delivered_seq + 1
        return self._broadcast.processed_seq + 1

    # writer side ------------------------------------------------------------------------------------------
    async def run(self, send: Send, send_frames: SendFrames | None = None) -> None:
        """`send_frames`, when given, writes ready-made frame bytes (a client without extensions):
        live records then go out as slices of the feed's shared buffer."""
        try:
            if self.since is not None:
                await self._catch_up(send)
            self._feed, start_after = self._broadcast.join(self)
            self.cursor = self._feed.end
            self._replies = deque((self.cursor, item) for _, item in self._replies)
            if self.since is None:
                self.delivered_seq = start_after
            else:
                await self._replay(send, until=start_after)
            await self._live(send, send_frames)
        finally:
            self._leave()

    async def _catch_up(self, send: Send) -> None:
        while self._broadcast.processed_seq - self.delivered_seq > CATCH_UP_SLACK:
            await self._replay(send, until=self._broadcast.processed_seq)
            await self._send_queued_replies(send)

    async def _send_queued_replies(self, send: Send) -> None:
        replies = [frame for _, (_, frames, _) in self._replies for frame in frames]
        self._replies.clear()
        await send(replies)

    async def _replay(self, send: Send, until: int) -> None:
        """Send the frames of journal records delivered_seq < seq <= until, read in a worker thread."""
        zone = self.service.zone
        retries = 0
        while self.delivered_seq < until:
            records = JournalReader(self.service.core.journal_dir).records(
                after_seq=self.delivered_seq, until_seq=until)
            try:
                while True:
                    chunk = await trio.to_thread.run_sync(self._read_chunk, records, zone)
                    if not chunk:
                        self.delivered_seq = until  # nothing more on disk up to `until`
                        break
                    await self._send_items(send, chunk)
                    if self.overflowed:
                        raise SlowConsumer(self.resume_seq())
            except FileNotFoundError:
                # Compaction removed a segment under us; list the files again and go on from
                # where we are (a later segment holds what comes next).
                retries += 1
                if retries > 3:
                    raise ReplayFailed("the journal kept changing during the replay") from None
            except CorruptJournal as exc:
                log.error("monitor replay stopped: %s", exc)
                raise ReplayFailed("the journal is damaged; see the server log") from None

    def _read_chunk(self, records: Iterator[Record], zone: tzinfo) -> list[Item]:
        out = []
        last = None
        for record in islice(records, REPLAY_CHUNK):
            last = record.seq
            if self.kind.accepts(record):
                frames = self.kind.select(self.filter, self.kind.render(record, zone))
                if frames:
                    out.append(queue_item(record.seq, frames))
        if last is not None and (not out or out[-1][0] != last):
            out.append((last, [], 0))  # lets the caller advance past records without frames
        return out

    async def _send_items(self, send: Send, items: Iterable[Item]) -> None:
        """Send queued or replayed items in order, several per write; records the replay already
        delivered are skipped, and `delivered_seq` moves on once a write is done."""
        batch: list[SharedText] = []
        size = 0
        last_seq = None
        for seq, frames, item_size in items:
            if seq is not None:
                if seq <= self.delivered_seq:
                    continue
                last_seq = seq
            batch += frames
            size += item_size
            if size >= BATCH_BYTES:
                await send(batch)
                batch, size = [], 0
                if last_seq is not None:
                    self.delivered_seq = last_seq
        await send(batch)
        if last_seq is not None:
            self.delivered_seq = last_seq

    async def _live(self, send: Send, send_frames: SendFrames | None) -> None:
        feed = self._feed
        replies = self._replies
        while True:
            # Pace first: right after a write this sleeps until the next one is due, and only
            # then looks for news, so a busy session wakes once per write.
            pause = self._last_write + self._broadcast.write_spacing() - trio.current_time()
            if pause > 0:
                await trio.sleep(pause)  # what arrives meanwhile goes out in the same write
            if self.overflowed:  # (a trim that passes a session's cursor drops it)
                raise SlowConsumer(self.resume_seq())
            if self.cursor == feed.end and not replies:
                self._wakeup = wakeup = trio.Event()
                feed.waiting.append(wakeup)
                try:
                    await wakeup.wait()  # no timeout: a record, a reply or a drop ends it
                finally:
                    self._wakeup = None
                continue
            self._last_write = trio.current_time()
            # Everything new up to now, in writes of one batch each (what arrives during these
            # writes waits for the next round, or the pace would be lost).
            round_end = feed.end
            while self.cursor < round_end or (replies and replies[0][0] <= self.cursor):
                count = min(BATCH_ITEMS, round_end - self.cursor)
                # (The items path also skips records a `since` in the future has not reached yet.)
                if send_frames is not None and count and not replies \
                        and feed.seq_at(self.cursor) > self.delivered_seq:
                    data, count, last_seq = feed.read_frames(self.cursor, count, BATCH_BYTES)
                    self.cursor += count
                    await send_frames(data)
                    self.delivered_seq = last_seq
                else:
                    await self._send_items(send, self._take(feed, replies, count))
                if self.overflowed:
                    break

    def _take(self, feed: Feed, replies: deque, count: int) -> list[Item]:
        """The next batch: up to `count` feed items from the cursor, with each reply before the
        records that came after it."""
        items = feed.read(self.cursor, count)
        self.cursor += len(items)
        if not replies:
            return items
        ordered: list[Item] = []
        position = self.cursor - len(items)
        for item in items:
            while replies and replies[0][0] <= position:
                ordered.append(replies.popleft()[1])
            ordered.append(item)
            position += 1
        while replies and replies[0][0] <= position:
            ordered.append(replies.popleft()[1])
        return ordered

"""The monitoring streams' plumbing: journal records -> frames -> every connected monitor.

One broadcaster per stream ("communications", "actions") holds ONE hub subscription, renders each
record once (mappers + JSON, and the WebSocket frame bytes), selects once per distinct filter and
appends the same frames to every session's bounded queue without blocking, so ingest never waits
for a monitor and the hub's fan-out cost does not grow with the number of monitors. A session
whose queue is full is dropped; it resumes with `since`. Each session's writer sends everything
queued in one write, and writes at a bounded pace (monitor.writes_per_second), so many clients cost
bigger writes, not more of them.

`since=N` is inclusive: the session first replays records with seq >= N from the journal, then
continues live. The boundary between the two is the broadcaster's `processed_seq` at the moment
the session joins: every record up to it is durable in the journal files, every later one will be
offered to the session. The live side skips what the replay already delivered, so there is no
gap and no duplicate. A far-behind session catches up from the journal before it joins, so a
long replay does not sit on a live queue that would overflow.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass
from datetime import tzinfo
from itertools import islice
from math import inf
from typing import Any, Awaitable, Callable, Iterable, Iterator, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import trio

from ..journal.reader import CorruptJournal, JournalReader
from ..journal.record import Record
from ..protocols.resiot import (
    COMM_TYPES,
    StreamFilter,
    encode_action,
    encode_envelope,
    parse_filter,
)
from ..protocols.wsframe import SharedText
from . import comms

log = logging.getLogger("gatewayd.monitor")

STREAMS = ("communications", "actions")
BROADCAST_QUEUE = 65_536  # records; the broadcaster only renders, so this absorbs bursts
REPLAY_CHUNK = 512  # records read and rendered per worker-thread call
CATCH_UP_SLACK = 256  # join the live stream once the replay is this close to it
DRAIN_PER_TURN = 1024  # records the broadcaster takes per scheduler turn beyond the first

BATCH_ITEMS = 512  # queued items taken per writer wake-up
BATCH_BYTES = 256 * 1024  # text per write, so a batch of big frames stays a modest buffer

Send = Callable[[Sequence[SharedText]], Awaitable[None]]  # writes frames in order, each one message
# A session's queue holds (seq, frames, their size) for records and (None, [frame], size) for replies.
Item = tuple[int | None, list[SharedText], int]
# One record's frames: (the Communication or Action, its JSON text and frame).
Rendered = list[tuple[Any, SharedText]]


class SlowConsumer(Exception):
    """The session fell behind its queue. `resume_seq` is what to pass as `since` to go on."""

    def __init__(self, resume_seq: int):
        super().__init__(f"too slow; resume with since={resume_seq}")
        self.resume_seq = resume_seq


class ReplayFailed(Exception):
    """The journal could not be read back (damage): the session cannot promise no gap."""


def local_zone(name: str) -> tzinfo:
    """The zone for DT fields: the configured one, else the box's own (TZ, then /etc/localtime)."""
    for candidate in (name, os.environ.get("TZ", "").lstrip(":")):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                pass
    try:
        with open("/etc/localtime", "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        from datetime import datetime

        return datetime.now().astimezone().tzinfo  # a fixed offset: the best left


# -- rendering ----------------------------------------------------------------------------------------
_FAILED_TYPES: set[str] = set()


@dataclass(frozen=True)
class StreamKind:
    name: str
    mappers: dict  # record type -> mapper; looked up live, so registrations made later count
    known_types: Sequence[str] | None  # what `types=` may name (None: anything)

    def accepts(self, record: Record) -> bool:
        return record.type in self.mappers

    def render(self, record: Record, zone: tzinfo) -> Rendered:
        """Every frame of one record, encoded once for every session. A failing mapper costs its
        record's frames, nothing more."""
        mapper = self.mappers.get(record.type)
        if mapper is None:
            return []
        try:
            if self.name == "communications":
                return [(c, SharedText(encode_envelope(c, zone))) for c in mapper(record)]
            action = mapper(record)
            return [] if action is None else [(action, SharedText(encode_action(action, zone)))]
        except Exception:
            # The first failure of a record type gets a traceback; repeats would flood the log.
            if record.type not in _FAILED_TYPES:
                _FAILED_TYPES.add(record.type)
                log.exception("monitor: the %s mapper for %s failed on seq %d (later failures of this type "
                              "are logged at debug level)", self.name, record.type, record.seq)
            else:
                log.debug("monitor: the %s mapper for %s failed on seq %d", self.name, record.type, record.seq)
            return []

    def matches(self, flt: StreamFilter, item: Any) -> bool:
        return flt.matches_comm(item) if self.name == "communications" else flt.matches_action(item)

    def select(self, flt: StreamFilter | None, frames: Rendered) -> list[SharedText]:
        if flt is None:
            return [frame for _, frame in frames]
        return [frame for item, frame in frames if self.matches(flt, item)]

    def parse_filter(self, query) -> StreamFilter | None:
        """The filter a URL asks for (None = everything). Raises ValueError with a precise text."""
        flt = parse_filter(query, self.known_types)
        empty = flt.types is None and flt.dev is None and flt.connector is None
        return None if empty else flt


KINDS = {
    "communications": StreamKind("communications", comms.COMM_MAPPERS, COMM_TYPES),
    "actions": StreamKind("actions", comms.ACTION_MAPPERS, None),
}


def parse_since(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ValueError(f"since: {value[:24]!r} is not a sequence number (a whole number >= 0)")
    return int(value)


# -- sessions ---------------------------------------------------------------------------------------------
def queue_item(seq: int | None, frames: list[SharedText]) -> Item:
    return seq, frames, sum(len(frame.text) for frame in frames)


class Session:
    """One monitoring client's feed. `run(send)` delivers frames until the client is too slow
    (SlowConsumer) or the caller cancels it; `reply(text)` queues an answer to a client request.

    The queue is a plain deque: the broadcaster appends to it for every record, so an append must
    cost next to nothing, and the writer is woken only when it waits for an empty queue. The
    writer takes everything queued (up to a batch) and sends it in one go."""

    def __init__(self, service: "MonitorService", kind: StreamKind, flt: StreamFilter | None,
                 since: int | None, queue_size: int):
        self.service = service
        self.kind = kind
        self.filter = flt
        self.since = since
        self._queue: deque[Item] = deque()
        self._queue_size = queue_size
        self._wakeup: trio.Event | None = None  # set while the writer waits for an empty queue
        self._last_write = -inf
        self._closed = False
        self.delivered_seq = since - 1 if since is not None else None  # the last record fully sent
        self.overflowed = False
        self._joined = False
        self._broadcast = service.broadcasts[kind.name]

    # broadcaster side (synchronous, never blocks) -----------------------------------------------
    def reply(self, text: str) -> None:
        self.offer(queue_item(None, [SharedText(text)]))

    def offer(self, item: Item) -> None:
        if self.overflowed or self._closed:
            return
        if len(self._queue) >= self._queue_size:
            self.drop()
            return
        self._queue.append(item)
        if self._wakeup is not None:
            self._wakeup.set()

    def drop(self) -> None:
        """Too slow (or the broadcaster lost its place): stop queueing; `run` raises SlowConsumer."""
        self.overflowed = True
        self._leave()
        if self._wakeup is not None:
            self._wakeup.set()

    def _leave(self) -> None:
        if self._joined:
            self._broadcast.leave(self)
            self._joined = False

    def close(self) -> None:
        self._leave()
        self._closed = True
        self._queue.clear()

    def resume_seq(self) -> int:
        if self.delivered_seq is not None:
            return self.delivered_seq + 1
        return self._broadcast.processed_seq + 1

    # writer side ------------------------------------------------------------------------------------------
    async def run(self, send: Send) -> None:
        try:
            if self.since is not None:
                await self._catch_up(send)
            start_after = self._broadcast.join(self)
            self._joined = True
            if self.since is None:
                self.delivered_seq = start_after
            else:
                await self._replay(send, until=start_after)
            await self._live(send)
        finally:
            self._leave()

    async def _catch_up(self, send: Send) -> None:
        while self._broadcast.processed_seq - self.delivered_seq > CATCH_UP_SLACK:
            await self._replay(send, until=self._broadcast.processed_seq)
            await self._send_queued_replies(send)

    async def _send_queued_replies(self, send: Send) -> None:
        # Before joining, the queue holds only replies, so taking them out keeps the order.
        replies = [frame for _, frames, _ in self._queue for frame in frames]
        self._queue.clear()
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

    async def _live(self, send: Send) -> None:
        queue = self._queue
        while True:
            if self.overflowed:
                raise SlowConsumer(self.resume_seq())
            if not queue:
                self._wakeup = trio.Event()
                try:
                    await self._wakeup.wait()  # no timeout: a record, a reply or a drop ends it
                finally:
                    self._wakeup = None
                continue
            pause = self._last_write + self._broadcast.write_spacing() - trio.current_time()
            if pause > 0:
                await trio.sleep(pause)  # what arrives meanwhile goes out in the same write
                continue
            self._last_write = trio.current_time()
            items = [queue.popleft() for _ in range(min(len(queue), BATCH_ITEMS))]
            await self._send_items(send, items)


# -- broadcasters ------------------------------------------------------------------------------------------
class Broadcast:
    def __init__(self, service: "MonitorService", kind: StreamKind):
        self.service = service
        self.kind = kind
        self.sessions: set[Session] = set()
        # Sessions by filter: a filter's selection is made once per record for all its sessions.
        self._by_filter: dict[StreamFilter | None, list[Session]] = {}
        self.processed_seq = service.core.hub.fanned_seq
        self.records = 0
        self.restarts = 0

    def join(self, session: Session) -> int:
        """Add a session; returns the seq after which it receives every record live."""
        self.sessions.add(session)
        self._by_filter.setdefault(session.filter, []).append(session)
        return self.processed_seq

    def write_spacing(self) -> float:
        """The least time between two writes of one session. monitor.writes_per_second is shared by
        all sessions of a stream (default 2,000: 10 clients write at most every 5 ms, 100 every
        50 ms), each write sending what gathered meanwhile. A socket write costs far more than a
        frame, so this bounds the fan-out's cost whatever the number of clients."""
        return len(self.sessions) / self.service.core.settings.monitor.writes_per_second

    def leave(self, session: Session) -> None:
        self.sessions.discard(session)
        group = self._by_filter.get(session.filter)
        if group is not None and session in group:
            group.remove(session)
            if not group:
                del self._by_filter[session.filter]

    def _offer(self, record: Record) -> None:
        self.processed_seq = record.seq
        self.records += 1
        if not self.sessions:
            return  # nobody listens: rendering would be wasted work at full ingest rate
        rendered = self.kind.render(record, self.service.zone)
        if rendered:
            for flt, group in list(self._by_filter.items()):
                frames = self.kind.select(flt, rendered)
                if frames:
                    item = queue_item(record.seq, frames)
                    for session in list(group):
                        session.offer(item)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        hub = self.service.core.hub
        started = False
        while True:
            with hub.subscribe(BROADCAST_QUEUE, self.kind.accepts) as subscription:
                self.processed_seq = subscription.start_after
                if not started:
                    task_status.started()
                    started = True
                receive = subscription.receive
                async for record in receive:
                    self._offer(record)
                    # A channel's receive yields to the scheduler even when records wait, so a
                    # broadcaster taking one record per turn falls behind whenever many tasks run
                    # (each turn of the scheduler then takes long): take what is already waiting.
                    for _ in range(DRAIN_PER_TURN):
                        try:
                            record = receive.receive_nowait()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                        self._offer(record)
            # The hub dropped us (we fell behind): every session must resume from the journal.
            self.restarts += 1
            log.warning("monitor: the %s broadcaster fell behind; dropping %d sessions",
                        self.kind.name, len(self.sessions))
            # No checkpoint from here to the next subscribe: a session cannot join in between.
            for session in list(self.sessions):
                session.drop()


class MonitorService:
    def __init__(self, core):
        self.core = core
        self.zone = local_zone(core.settings.monitor.timezone)
        self.broadcasts = {name: Broadcast(self, kind) for name, kind in KINDS.items()}
        self.dropped = 0
        core.metrics.gauge("gatewayd_monitor_sessions", "Connected monitoring clients.",
                           lambda: sum(len(b.sessions) for b in self.broadcasts.values()))
        core.metrics.describe("gatewayd_monitor_dropped_total", "Monitoring clients dropped as too slow (1013).")

    def session(self, stream: str, flt: StreamFilter | None, since: int | None) -> Session:
        return Session(self, KINDS[stream], flt, since, self.core.settings.monitor.queue_size)

    def parse_filter(self, stream: str, query) -> StreamFilter | None:
        return KINDS[stream].parse_filter(query)

    @staticmethod
    def parse_since(value: str | None) -> int | None:
        return parse_since(value)

    def note_dropped(self, stream: str) -> None:
        self.dropped += 1
        self.core.metrics.inc("gatewayd_monitor_dropped_total", stream=stream)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for broadcast in self.broadcasts.values():
                await nursery.start(broadcast.run)
            task_status.started()

"""The monitoring streams' plumbing: journal records -> frames -> every connected monitor.

One broadcaster per stream ("communications", "actions") holds ONE hub subscription, renders each
record once (mappers + JSON) and offers the frames to every session's bounded queue with
send_nowait, so ingest never waits for a monitor and the hub's fan-out cost does not grow with
the number of monitors. A session whose queue is full is dropped; it resumes with `since`.

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
from dataclasses import dataclass
from datetime import tzinfo
from itertools import islice
from typing import Any, Awaitable, Callable, Iterator, Sequence
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
from . import comms

log = logging.getLogger("gatewayd.monitor")

STREAMS = ("communications", "actions")
BROADCAST_QUEUE = 65_536  # records; the broadcaster only renders, so this absorbs bursts
REPLAY_CHUNK = 512  # records read and rendered per worker-thread call
CATCH_UP_SLACK = 256  # join the live stream once the replay is this close to it

Send = Callable[[str], Awaitable[None]]
# One record's frames: (the Communication or Action, its JSON text).
Rendered = list[tuple[Any, str]]


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
        """Every frame of one record. A failing mapper costs its record's frames, nothing more."""
        mapper = self.mappers.get(record.type)
        if mapper is None:
            return []
        try:
            if self.name == "communications":
                return [(c, encode_envelope(c, zone)) for c in mapper(record)]
            action = mapper(record)
            return [] if action is None else [(action, encode_action(action, zone))]
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

    def select(self, flt: StreamFilter | None, frames: Rendered) -> list[str]:
        if flt is None:
            return [text for _, text in frames]
        return [text for item, text in frames if self.matches(flt, item)]

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
class Session:
    """One monitoring client's feed. `run(send)` delivers frames until the client is too slow
    (SlowConsumer) or the caller cancels it; `reply(text)` queues an answer to a client request."""

    def __init__(self, service: "MonitorService", kind: StreamKind, flt: StreamFilter | None,
                 since: int | None, queue_size: int):
        self.service = service
        self.kind = kind
        self.filter = flt
        self.since = since
        # Items are (seq, frames) for records and (None, [text]) for replies.
        self._send, self._receive = trio.open_memory_channel[tuple[int | None, list[str]]](queue_size)
        self.delivered_seq = since - 1 if since is not None else None  # the last record fully sent
        self.overflowed = False
        self._joined = False
        self._broadcast = service.broadcasts[kind.name]

    # broadcaster side (synchronous, never blocks) -----------------------------------------------
    def offer(self, seq: int, frames: Rendered, all_texts: list[str]) -> None:
        texts = all_texts if self.filter is None else self.kind.select(self.filter, frames)
        if texts:
            self._push((seq, texts))

    def reply(self, text: str) -> None:
        self._push((None, [text]))

    def _push(self, item: tuple[int | None, list[str]]) -> None:
        if self.overflowed:
            return
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.drop()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def drop(self) -> None:
        """Too slow (or the broadcaster lost its place): stop queueing; `run` raises SlowConsumer."""
        self.overflowed = True
        self._leave()
        self._send.close()

    def _leave(self) -> None:
        if self._joined:
            self._broadcast.sessions.discard(self)
            self._joined = False

    def close(self) -> None:
        self._leave()
        self._send.close()
        self._receive.close()

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
        while True:
            try:
                _, texts = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            for text in texts:
                await send(text)

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
                    for seq, texts in chunk:
                        for text in texts:
                            await send(text)
                        self.delivered_seq = seq
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

    def _read_chunk(self, records: Iterator[Record], zone: tzinfo) -> list[tuple[int, list[str]]]:
        out = []
        last = None
        for record in islice(records, REPLAY_CHUNK):
            last = record.seq
            if self.kind.accepts(record):
                texts = self.kind.select(self.filter, self.kind.render(record, zone))
                if texts:
                    out.append((record.seq, texts))
        if last is not None and (not out or out[-1][0] != last):
            out.append((last, []))  # lets the caller advance past records without frames
        return out

    async def _live(self, send: Send) -> None:
        while True:
            try:
                item = await self._receive.receive()
            except trio.EndOfChannel:
                raise SlowConsumer(self.resume_seq()) from None
            batch = [item]
            while len(batch) < 64:
                try:
                    batch.append(self._receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            for seq, texts in batch:
                if self.overflowed:
                    raise SlowConsumer(self.resume_seq())
                if seq is not None and seq <= self.delivered_seq:
                    continue
                for text in texts:
                    await send(text)
                if seq is not None:
                    self.delivered_seq = seq


# -- broadcasters ------------------------------------------------------------------------------------------
class Broadcast:
    def __init__(self, service: "MonitorService", kind: StreamKind):
        self.service = service
        self.kind = kind
        self.sessions: set[Session] = set()
        self.processed_seq = service.core.hub.fanned_seq
        self.records = 0
        self.restarts = 0

    def join(self, session: Session) -> int:
        """Add a session; returns the seq after which it receives every record live."""
        self.sessions.add(session)
        return self.processed_seq

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        hub = self.service.core.hub
        started = False
        while True:
            with hub.subscribe(BROADCAST_QUEUE, self.kind.accepts) as subscription:
                self.processed_seq = subscription.start_after
                if not started:
                    task_status.started()
                    started = True
                async for record in subscription.receive:
                    self.processed_seq = record.seq
                    self.records += 1
                    if not self.sessions:
                        continue  # nobody listens: rendering would be wasted work at full ingest rate
                    frames = self.kind.render(record, self.service.zone)
                    if frames:
                        texts = [text for _, text in frames]
                        for session in list(self.sessions):
                            session.offer(record.seq, frames, texts)
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

"""The monitoring streams' plumbing: journal records -> frames -> every connected monitor.

One broadcaster per stream ("communications", "actions") holds ONE hub subscription, renders each
record once (mappers + JSON, and the WebSocket frame bytes), selects once per distinct filter and
appends the frames to that filter's feed: one bounded list that all its sessions read, each at its
own cursor. Ingest never waits for a monitor, and a record costs the same with one monitor or a
hundred. A session that falls more than monitor.queue_size records behind its feed is dropped; it
resumes with `since`. Each session's writer sends everything new in one write, and writes at a
bounded pace (monitor.writes_per_second), so many clients cost bigger writes, not more of them.

`since=N` is inclusive: the session first replays records with seq >= N from the journal, then
continues live. The boundary between the two is the broadcaster's `processed_seq` at the moment
the session joins: every record up to it is durable in the journal files, every later one will be
offered to the session. The live side skips what the replay already delivered, so there is no
gap and no duplicate. A far-behind session catches up from the journal before it joins, so a
long replay does not sit on a live queue that would overflow.
"""

from __future__ import annotations

import logging

import trio

from ...journal.record import Record
from .resiot import StreamFilter
from .session import Feed, Session, queue_item
from .streams import StreamKind, local_zone, parse_since, stream_kinds

log = logging.getLogger("gatewayd.monitor")

BROADCAST_QUEUE = 65_536  # records; the broadcaster only renders, so this absorbs bursts
DRAIN_PER_TURN = 1024  # records the broadcaster takes per scheduler turn beyond the first

BUSY_FROM, BUSY_FULL = 0.75, 0.95  # event-loop busy share where write spacing starts / ends stretching
BUSY_STRETCH = 10.0


# -- broadcasters ------------------------------------------------------------------------------------------
class Broadcast:
    def __init__(self, service: "MonitorService", kind: StreamKind):
        self.service = service
        self.kind = kind
        self.sessions: set[Session] = set()
        # One feed per distinct filter: its selection is made once per record for all its sessions.
        self._feeds: dict[StreamFilter | None, Feed] = {}
        self.processed_seq = service.core.hub.fanned_seq
        self.records = 0
        self.restarts = 0

    def join(self, session: Session) -> tuple[Feed, int]:
        """Add a session: its filter's feed, and the seq after which it gets every record there."""
        feed = self._feeds.get(session.filter)
        if feed is None:
            feed = self._feeds[session.filter] = Feed(self.service.core.settings.monitor.queue_size)
        feed.sessions.append(session)
        self.sessions.add(session)
        return feed, self.processed_seq

    def write_spacing(self) -> float:
        """The least time between two writes of one session. monitor.writes_per_second is shared by
        all sessions of a stream (default 2,000: 10 clients write at most every 5 ms, 100 every
        50 ms), each write sending what gathered meanwhile. A socket write costs far more than a
        frame, so this bounds the fan-out's cost whatever the number of clients.

        While the event loop is nearly saturated the spacing stretches, up to BUSY_STRETCH times
        at BUSY_FULL: fewer, bigger writes leave the time to ingest, which must not wait for
        monitors; the frames only arrive a little later."""
        spacing = len(self.sessions) / self.service.core.settings.monitor.writes_per_second
        busy = self.service.core.loop_load.busy()
        if busy <= BUSY_FROM:
            return spacing
        return spacing * (1 + (BUSY_STRETCH - 1) * min(1.0, (busy - BUSY_FROM) / (BUSY_FULL - BUSY_FROM)))

    def leave(self, session: Session, feed: Feed) -> None:
        self.sessions.discard(session)
        if session in feed.sessions:
            feed.sessions.remove(session)
        if not feed.sessions and self._feeds.get(session.filter) is feed:
            del self._feeds[session.filter]

    def _offer(self, record: Record) -> None:
        self.processed_seq = record.seq
        self.records += 1
        if not self.sessions:
            return  # nobody listens: rendering would be wasted work at full ingest rate
        rendered = self.kind.render(record, self.service.zone)
        if rendered:
            for flt, feed in list(self._feeds.items()):  # a trim may drop a feed's last session
                frames = self.kind.select(flt, rendered)
                if frames:
                    feed.append(queue_item(record.seq, frames))

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
        self.kinds = stream_kinds(core.comms)
        self.broadcasts = {name: Broadcast(self, kind) for name, kind in self.kinds.items()}
        self.dropped = 0
        core.metrics.gauge("gatewayd_monitor_sessions", "Connected monitoring clients.",
                           lambda: sum(len(b.sessions) for b in self.broadcasts.values()))
        core.metrics.describe("gatewayd_monitor_dropped_total", "Monitoring clients dropped as too slow (1013).")

    def session(self, stream: str, flt: StreamFilter | None, since: int | None) -> Session:
        return Session(self, self.kinds[stream], flt, since, self.core.settings.monitor.queue_size)

    def parse_filter(self, stream: str, query) -> StreamFilter | None:
        return self.kinds[stream].parse_filter(query)

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

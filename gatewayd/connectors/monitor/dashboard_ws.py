"""`/dashboard/ws`: the dashboard's live updates, one JSON event per text frame.

Needs an operator: a dashboard session (from this server's own origin) or an API key. Query:
`since=N` first replays the journal from seq N (inclusive), then continues live with no gap and no
duplicate; `categories=a,b` and `device=<id>` / `sn=<serial>` narrow the stream. The first frame
is `{"kind":"hello","seq":S}` once the replay is done (S = the last seq covered). A client that falls
behind its bounded queue is closed with 1013 and a reason naming the `since` to resume from; a
`since` further back than MAX_REPLAY records starts there and says so with `{"kind":"gap",...}`.
Clients may send `{"type":"ping"}` (answered with `{"kind":"pong"}`); anything keeps it alive.
Served as plain ASGI in front of the web framework (`WEBSOCKETS`, gatewayd/web/asgi_ws.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any, Iterator

import trio

from ...journal.reader import CorruptJournal, JournalReader
from ...journal.record import Record
from . import dashboard_events
from ...web.asgi_ws import AsgiWebSocket, WsRoute
from ...web.auth import identify
from ...web.wsconn import CLOSE_SLOW, ConnectionEnded, WsConnection

log = logging.getLogger("gatewayd.dashboard")

PATH = "/dashboard/ws"
QUEUE_RECORDS = 2000  # records waiting for this client before it is dropped (1013)
SEND_QUEUE = 256  # frames waiting for the socket writer
HEARTBEAT = 90.0  # the page pings every 30 s
CATCH_UP_SLACK = 256
MAX_REPLAY = 100_000
REPLAY_CHUNK = 512
MAX_CLIENT_FRAME = 1024


_EVENT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)  # one for every event


@dataclass(frozen=True)
class FeedQuery:
    since: int | None
    categories: frozenset[str] | None
    device: str | None
    sn: str | None

    def wants(self, event: dict[str, Any]) -> bool:
        if self.categories is not None and event["category"] not in self.categories:
            return False
        if self.device is not None and event.get("device_id") != self.device:
            return False
        if self.sn is not None and event.get("sn") != self.sn:
            return False
        return True


def parse_query(args) -> FeedQuery:
    """The feed a URL asks for. Raises ValueError with a precise text."""
    since_text = args.get("since")
    since = None
    if since_text not in (None, ""):
        if not since_text.isdigit() or len(since_text) > 18 or int(since_text) < 1:
            raise ValueError(f"since: {since_text[:24]!r} is not a sequence number (a whole number >= 1)")
        since = int(since_text)
    categories = None
    if args.get("categories"):
        categories = frozenset(c.strip() for c in args["categories"].split(",") if c.strip())
        unknown = sorted(categories - set(dashboard_events.CATEGORIES))
        if unknown:
            raise ValueError(f"categories: unknown {', '.join(unknown)[:80]}; known: "
                             f"{', '.join(dashboard_events.CATEGORIES)}")
    device = args.get("device") or None
    sn = args.get("sn") or None
    for name, value in (("device", device), ("sn", sn)):
        if value is not None and len(value) > 128:
            raise ValueError(f"{name}: longer than 128 characters")
    return FeedQuery(since, categories, device, sn)


async def live(core, ws: AsgiWebSocket, path: str) -> None:
    if core.access.blocked("apikey", ws.remote_addr):
        await ws.refuse_json(429, "rate_limited", "too many failed attempts from this address; try later")
        return
    handshake = ws.handshake
    if await identify(handshake, core) is None:
        await ws.refuse_json(401, "unauthorized", "log in to the dashboard (or give an API key) first")
        return
    try:
        query = parse_query(handshake.args)
    except ValueError as exc:
        await ws.refuse_json(400, "invalid", str(exc))
        return
    conn = WsConnection(ws, heartbeat=HEARTBEAT, queue_size=SEND_QUEUE, connections=core.connections)
    await conn.run(partial(_session, core, query))


WEBSOCKETS = (WsRoute(live, paths=(PATH,)),)


async def _session(core, query: FeedQuery, conn: WsConnection) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_read, conn, nursery.cancel_scope)
        await Feed(core, query, conn).run()
        nursery.cancel_scope.cancel()


async def _read(conn: WsConnection, scope: trio.CancelScope) -> None:
    try:
        while True:
            frame = await conn.receive()
            if len(frame) <= MAX_CLIENT_FRAME and '"ping"' in str(frame):
                conn.send_nowait('{"kind":"pong"}')
    except ConnectionEnded:
        scope.cancel()


class Feed:
    def __init__(self, core, query: FeedQuery, conn: WsConnection):
        self.core = core
        self.query = query
        self.conn = conn
        self.delivered: int | None = None  # every record up to this seq was considered

    async def _send_event(self, event: dict[str, Any]) -> None:
        await self.conn.send(_EVENT_JSON.encode(event))

    async def run(self) -> None:
        hub = self.core.hub
        if self.query.since is not None:
            self.delivered = self.query.since - 1
            oldest = hub.fanned_seq - MAX_REPLAY
            if self.delivered < oldest:
                await self._send_event({"kind": "gap", "from": self.query.since, "to": oldest})
                self.delivered = oldest
            while hub.fanned_seq - self.delivered > CATCH_UP_SLACK:
                await self._replay(hub.fanned_seq)
        with hub.subscribe(QUEUE_RECORDS, self._accepts) as subscription:
            if self.delivered is None:
                self.delivered = subscription.start_after
            else:
                await self._replay(subscription.start_after)
            await self._send_event({"kind": "hello", "seq": self.delivered})
            async for record in subscription.receive:
                if record.seq <= self.delivered:
                    continue
                event = dashboard_events.render(record, self.core.comms)
                if event is not None and self.query.wants(event):
                    await self._send_event(event)
                self.delivered = record.seq
        resume = self.delivered + 1
        log.info("dashboard client %s dropped as too slow (resume with since=%d)", self.conn.remote, resume)
        self.conn.request_close(CLOSE_SLOW, f"too slow; resume with since={resume}")

    def _accepts(self, record: Record) -> bool:
        if self.query.device is not None and record.data.get("device_id") != self.query.device:
            return False
        return dashboard_events.accepts(record, self.core.comms)

    async def _replay(self, until: int) -> None:
        """Events of journal records delivered < seq <= until, read and rendered in a worker thread."""
        retries = 0
        while self.delivered < until:
            records = JournalReader(self.core.journal_dir).records(after_seq=self.delivered, until_seq=until)
            try:
                while True:
                    chunk, last = await trio.to_thread.run_sync(self._read_chunk, records)
                    if last is None:
                        self.delivered = until  # nothing more on disk up to `until`
                        break
                    for event in chunk:
                        await self._send_event(event)
                    self.delivered = last
            except FileNotFoundError:  # compaction removed a segment under us: list them again
                retries += 1
                if retries > 3:
                    raise
            except CorruptJournal as exc:
                log.error("dashboard replay stopped: %s", exc)
                await self._send_event({"kind": "gap", "from": self.delivered + 1, "to": until})
                self.delivered = until  # the live part still works; the damage is in the log

    def _read_chunk(self, records: Iterator[Record]) -> tuple[list[dict[str, Any]], int | None]:
        events, last = [], None
        for record in islice(records, REPLAY_CHUNK):
            last = record.seq
            if self._accepts(record):
                event = dashboard_events.render(record, self.core.comms)
                if event is not None and self.query.wants(event):
                    events.append(event)
        return events, last

"""One webhook's sender: reads the journal from its cursor, POSTs each event (or batch) until the
endpoint answers 2xx, and only then moves on. Failures (timeout, connection error, non-2xx) are
retried with exponential backoff and jitter; an event still failing `max_age` seconds after it
happened is dropped with a `webhook.dropped` record, and while the endpoint keeps failing, further
events already older than that are dropped unsent (one record per journal batch).

Each webhook is its own task with its own connection pool: a slow or dead endpoint delays nothing
but itself. The journal holds its backlog (the cursor holds back compaction), so ingest never waits.
The cursor is saved at most every CURSOR_SAVE_EVERY seconds while busy, at once when caught up, and
on stop: after a crash a few events may be sent again (receivers deduplicate on
X-Gatewayd-Delivery), none is skipped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import trio

from ...journal.follow import JournalFollower
from ...journal.record import parse_ts
from ...journal.writer import JournalUnavailable
from ...logs import RateLimitedLogger
from ...northbound.shared import SharedEvents
from .delivery import Pending, encode, finished_through, pending_events, request_headers, retry_delay
from .pacing import Pacer

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("gatewayd.webhooks")

CURSOR_SAVE_EVERY = 0.5  # seconds
RESPONSE_BYTES_READ = 64 * 1024  # of an answer's body; the rest is not read


@dataclass(frozen=True)
class WebhookSpec:
    name: str
    url: str
    events: frozenset[str]
    secret: str
    headers: tuple[tuple[str, str], ...]
    timeout: float
    max_age: float
    batch: bool
    batch_max: int
    source: str  # "config" | "runtime"
    start_after: int | None = None  # runtime webhooks: the seq of their webhook.added record

    @property
    def cursor(self) -> str:
        return f"webhook.{self.name}"


@dataclass
class WebhookStatus:
    last_success: float | None = None  # wall clock
    failing_since: float | None = None
    last_error: str | None = None
    delivered: int = 0  # events
    failures: int = 0  # failed requests
    dropped: int = 0  # events
    position: int = 0  # the last seq handled (saved or about to be)


async def post(client: httpx.AsyncClient, spec: WebhookSpec, chunk: list[Pending]) -> str | None:
    """One request; None when the endpoint took it (2xx), else what went wrong."""
    import httpx  # loaded already: the client exists

    body = encode(chunk, spec.batch)
    headers = request_headers(chunk, body, spec.secret, spec.batch)
    try:
        with trio.fail_after(spec.timeout):
            async with client.stream("POST", spec.url, content=body, headers=headers) as response:
                read = 0
                async for part in response.aiter_raw():
                    read += len(part)
                    if read >= RESPONSE_BYTES_READ:
                        break
                status = response.status_code
    except trio.TooSlowError:
        return f"no answer within {spec.timeout:g} s"
    except httpx.HTTPError as exc:
        # The text may quote the peer: keep it printable for logs, the CLI and the dashboard.
        text = "".join(c if c.isprintable() else "?" for c in str(exc)[:200])
        return f"{type(exc).__name__}: {text or 'connection failed'}"
    if 200 <= status < 300:
        return None
    return f"HTTP {status}"


class WebhookWorker:
    def __init__(self, core, spec: WebhookSpec, status: WebhookStatus, pacer: Pacer, rendered: SharedEvents, *,
                 retry_first: Callable[[], float], clock: Callable[[], float] = time.time):
        self.core = core
        self.pacer = pacer
        self.rendered = rendered
        self.spec = spec
        self.status = status
        self._retry_first = retry_first
        self._clock = clock
        self._saved = 0
        self._saved_at = 0.0
        self._rlog = RateLimitedLogger(log, 60.0)

    def _start_position(self) -> int:
        cursors = self.core.cursors
        if cursors.exists(self.spec.cursor):
            return cursors.load(self.spec.cursor)
        if self.spec.start_after is not None:
            return self.spec.start_after
        return self.core.hub.fanned_seq  # a new webhook from the configuration: from now on

    async def run(self) -> None:
        position = self._start_position()
        self.status.position = position
        await self.core.cursors.asave(self.spec.cursor, position)
        self._saved, self._saved_at = position, trio.current_time()
        follower = JournalFollower(self.core.hub, self.core.journal_dir, position)
        import httpx  # imported on first use: a daemon without webhooks never loads it (resident memory)

        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        try:
            async with httpx.AsyncClient(headers=dict(self.spec.headers), limits=limits, timeout=self.spec.timeout,
                                         follow_redirects=False, trust_env=False) as client:
                while True:
                    if self.status.position > self._saved and self.core.hub.fanned_seq <= follower.position:
                        await self._save()  # caught up: make the position durable before waiting
                    records = await follower.next_batch()
                    events = pending_events(records, self.spec.events, self.rendered)
                    await self._send_all(client, events, records[-1].seq)
        finally:
            if self.status.position > self._saved:
                with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                    await self._save()

    async def _send_all(self, client: httpx.AsyncClient, events: list[Pending], last_seq: int) -> None:
        size = self.spec.batch_max if self.spec.batch else 1
        index = 0
        while index < len(events):
            if self.status.failing_since is not None:
                stale = self._stale_prefix(events, index)
                if stale > index:
                    await self._drop(events[index:stale], self.status.last_error or "failing")
                    index = stale
                    continue
            chunk = events[index:index + size]
            await self._deliver(client, chunk)
            index += len(chunk)
            self.status.position = finished_through(index, events, last_seq)
            if trio.current_time() - self._saved_at >= CURSOR_SAVE_EVERY:
                await self._save()
        self.status.position = last_seq

    def _stale_prefix(self, events: list[Pending], index: int) -> int:
        """Where the run of events older than max_age that starts at `index` ends."""
        now = self._clock()
        while index < len(events) and now - parse_ts(events[index].ts).timestamp() > self.spec.max_age:
            index += 1
        return index

    async def _deliver(self, client: httpx.AsyncClient, chunk: list[Pending]) -> None:
        failures = 0
        while True:
            error = await self.pacer.run(lambda: post(client, self.spec, chunk))
            now = self._clock()
            if error is None:
                self.status.delivered += len(chunk)
                self.status.last_success = now
                self.status.failing_since = self.status.last_error = None
                self.core.metrics.inc("gatewayd_webhook_events_total", len(chunk), webhook=self.spec.name,
                                      result="delivered")
                return
            failures += 1
            self.status.failures += 1
            self.status.last_error = error
            if self.status.failing_since is None:
                self.status.failing_since = now
            self.core.metrics.inc("gatewayd_webhook_failures_total", webhook=self.spec.name)
            self._rlog.warning(self.spec.name, "webhook %s: %s (event %s, try %d)", self.spec.name, error,
                               chunk[0].event_id, failures)
            age = now - parse_ts(chunk[0].ts).timestamp()
            if age > self.spec.max_age:
                await self._drop(chunk, error, failures)
                return
            await trio.sleep(min(retry_delay(failures, self._retry_first()), self.spec.max_age - age + 0.01))

    async def _drop(self, chunk: list[Pending], error: str, tries: int = 0) -> None:
        first, last = chunk[0], chunk[-1]
        data: dict[str, Any] = {"name": self.spec.name, "first_event": first.event_id, "last_event": last.event_id,
                                "count": len(chunk), "first_ts": first.ts, "error": error[:300], "tries": tries,
                                "max_age": self.spec.max_age}
        while True:
            try:
                await self.core.hub.publish("webhook.dropped", data)
                break
            except (JournalUnavailable, trio.TooSlowError) as exc:
                # The drop must be on record before the cursor passes the events; wait for the journal.
                self._rlog.error("journal", "webhook %s: drop not journaled yet: %s", self.spec.name, exc)
                await trio.sleep(1.0)
        self.status.dropped += len(chunk)
        self.core.metrics.inc("gatewayd_webhook_events_total", len(chunk), webhook=self.spec.name, result="dropped")
        log.error("webhook %s: dropped %d event(s) %s..%s older than %g s (%s)", self.spec.name, len(chunk),
                  first.event_id, last.event_id, self.spec.max_age, error)

    async def _save(self) -> None:
        position = self.status.position
        await self.core.cursors.asave(self.spec.cursor, position)
        self._saved, self._saved_at = position, trio.current_time()

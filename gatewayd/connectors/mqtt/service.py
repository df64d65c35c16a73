"""The MQTT forwarder: journal -> events -> broker, with a durable cursor; commands back down.

The journal is the outbox. A follower reads the records after the cursor `mqtt` in seq order; each
record's events are published (QoS 1 by default) and the cursor moves to the last seq whose messages
the broker has all acknowledged (PUBACK). While the broker is away nothing waits for it: devices are
acknowledged as always, records pile up in the journal (the cursor holds back compaction), and on
reconnection everything after the cursor is published in order, at `publish_rate`. A backlog beyond
`max_backlog_records` is given up from its oldest end, with a record saying what was dropped.

Connections are retried for ever with exponential backoff and jitter; each kind of failure (wrong
password, TLS, network) is logged once until it changes or the connection succeeds.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import trio

from ...comm_tables import Comms
from ...journal.follow import JournalFollower
from ...journal.record import Record, parse_ts
from ...journal.writer import JournalUnavailable
from ...broker_url import parse_url
from ...logs import RateLimitedLogger
from ...northbound.alerts import has_events, record_events
from ...northbound.events import COMMAND_REJECTED, StateDirectory
from ..monitor.resiot import Action
from ...ratelimit import TokenBucket
from ..monitor.streams import local_zone
from . import commands as mqtt_commands
from .client import Connection, ConnectOptions, MqttFailure, tls_context
from .outbox import AckTracker, Pacer, RateMeter, backoff_delay
from .topics import command_filters, event_topic, parse_command_topic, resolve_names

log = logging.getLogger("gatewayd.mqtt")

CURSOR = "mqtt"
BACKLOG_DROPPED = "mqtt.backlog_dropped"
FOLLOW_BATCH = 512
PACE_FROM = 1024  # records behind the journal's end from which publish_rate applies (a backlog)
MAX_OPEN_RECORDS = 65_536  # records published or skipped but not yet confirmed (bounds memory)
CURSOR_SAVE_INTERVAL = 0.5  # seconds: the cursor file is written at most this often
BACKLOG_CHECK_INTERVAL = 5.0
COMMAND_QUEUE = 64
COMMANDS_PER_SECOND, COMMAND_BURST = 20.0, 100


class MqttService:
    def __init__(self, core):
        self.core = core
        self.settings = core.settings.mqtt
        self.enabled = bool(self.settings.url)
        self.names = resolve_names(self.settings.site, self.settings.topic_prefix, self.settings.client_id,
                                   socket.gethostname())
        self.address = parse_url(self.settings.url) if self.enabled else None
        self.acked_seq = core.cursors.load(CURSOR) if self.enabled else 0
        self.state = "stopped" if self.enabled else "disabled"
        self.since: float | None = None  # wall-clock time of the last state change
        self.last_error: str | None = None
        self.last_error_kind: str | None = None
        self.attempts = 0  # failed connection attempts since the last success
        self.published = 0
        self.refused = 0
        self.dropped_records = 0
        self.commands = {"accepted": 0, "refused": 0, "dropped": 0}
        self.connection: Connection | None = None
        self._tracker: AckTracker | None = None
        self._acked = trio.Event()  # set on every PUBACK (the publisher waits for room)
        self._cursor_moved = trio.Event()
        self._session_scope: trio.CancelScope | None = None
        self._drop_to: int | None = None
        self._meter = RateMeter()
        self._directory = StateDirectory(core.state)
        self._zone = local_zone(core.settings.monitor.timezone)
        self._command_send: trio.MemorySendChannel | None = None
        self._command_bucket = TokenBucket(COMMANDS_PER_SECOND, COMMAND_BURST, time.monotonic())
        self._rlog = RateLimitedLogger(log, 60.0)
        if self.enabled:
            self._register_metrics()

    # -- status ----------------------------------------------------------------------------------------
    @property
    def journal_seq(self) -> int:
        return self.core.hub.fanned_seq

    @property
    def backlog(self) -> int:
        return max(0, self.journal_seq - self.acked_seq)

    def degraded(self) -> bool:
        """Enabled but not connected (the first attempt after the start is given its chance)."""
        return self.enabled and self.core.online and self.state not in ("connected", "stopped") \
            and not (self.state == "connecting" and self.attempts == 0)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": self.enabled, "state": self.state}
        if not self.enabled:
            return out
        if not self.core.online:
            out["state"] = "daemon not running"
        out.update({
            "broker": str(self.address), "site": self.names.site, "topic_prefix": self.names.prefix,
            "client_id": self.names.client_id, "qos": self.settings.qos,
            "since": _iso(self.since) if self.since else None, "last_error": self.last_error,
            "failed_attempts": self.attempts, "cursor_seq": self.acked_seq, "journal_seq": self.journal_seq,
            "backlog_records": self.backlog, "in_flight": self._tracker.in_flight if self._tracker else 0,
            "published_total": self.published, "published_per_second": round(self._meter.rate(), 1),
            "refused_by_broker_total": self.refused, "dropped_records_total": self.dropped_records,
            "commands": dict(self.commands),
        })
        return out

    def _register_metrics(self) -> None:
        m = self.core.metrics
        m.gauge("gatewayd_mqtt_connected", "1 while connected to the MQTT broker.",
                lambda: 1 if self.state == "connected" else 0)
        m.gauge("gatewayd_mqtt_backlog_records", "Journal records not yet acknowledged by the broker.",
                lambda: self.backlog)
        m.gauge("gatewayd_mqtt_last_puback_seq", "The last journal seq the broker acknowledged in full (cursor).",
                lambda: self.acked_seq)
        m.gauge("gatewayd_mqtt_published_per_second", "Messages published per second (last 10 s).",
                self._meter.rate)
        m.gauge("gatewayd_mqtt_published_total", "Messages published to the broker.", lambda: self.published)
        m.gauge("gatewayd_mqtt_dropped_records_total", "Journal records given up (backlog beyond "
                "mqtt.max_backlog_records).", lambda: self.dropped_records)
        m.describe("gatewayd_mqtt_connects_total", "MQTT connection attempts, by result.")
        m.describe("gatewayd_mqtt_commands_total", "Commands received on command/down topics, by result.")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since = time.time()

    # -- running ---------------------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        if not self.enabled:
            if self.core.cursors.exists(CURSOR):
                # Forwarding was turned off: stop holding the journal back for it.
                self.core.cursors.remove(CURSOR)
                log.info("MQTT is off: its journal cursor is removed (a later start publishes from then on)")
            task_status.started()
            return
        if not self.core.cursors.exists(CURSOR):
            self.acked_seq = self.journal_seq  # first start: publish from now on
            await self.core.cursors.asave(CURSOR, self.acked_seq)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._save_cursor)
                nursery.start_soon(self._sample_rate)
                nursery.start_soon(self._watch_backlog)
                nursery.start_soon(self._connect_forever)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self.core.cursors.asave(CURSOR, self.acked_seq)

    async def _connect_forever(self) -> None:
        attempt = 0
        while True:
            self._set_state("connecting")
            failure = None
            connection = None
            try:
                connection = Connection(self._options(), self._on_ack,
                                        self._on_message if self.settings.commands else None)
                await connection.connect()
            except MqttFailure as exc:
                failure = exc
            except Exception as exc:  # a bug must end this attempt, not the daemon
                log.exception("MQTT connection attempt failed")
                failure = MqttFailure("internal", f"internal error: {exc!r}"[:300])
            except BaseException:  # cancelled (the daemon stops) half-way: leave no socket open
                if connection is not None:
                    connection.close()
                raise
            if failure is not None and connection is not None:
                connection.close()
            if failure is None:
                self._connected(connection)
                try:
                    await self._session(connection)
                    failure = connection.failure
                except Exception as exc:  # a bug must end this connection, not the daemon
                    log.exception("MQTT session failed")
                    failure = MqttFailure("internal", f"internal error: {exc!r}"[:300])
                finally:
                    connection.close()
                    self.connection = None
                    self._tracker = None
                attempt = 0
            if self._drop_to is not None:
                await self._drop_backlog()
                if failure is None:
                    continue  # the session was stopped for the drop: connect again at once
            if failure is not None:
                attempt += 1
                self._failed(failure)
            await trio.sleep(backoff_delay(attempt, self.settings.reconnect_max))

    def _options(self) -> ConnectOptions:
        s = self.settings
        password = None
        if s.password_file:
            try:
                password = next(iter(Path(s.password_file).read_text().splitlines()), "")
            except (OSError, UnicodeDecodeError) as exc:
                raise MqttFailure("config", f"cannot read mqtt.password_file {s.password_file}: "
                                            f"{getattr(exc, 'strerror', None) or exc}") from None
        context = None
        if self.address.tls:
            try:
                context = tls_context(s.ca_file, s.cert_file, s.key_file)
            except (OSError, ValueError) as exc:
                raise MqttFailure("tls", f"cannot load the TLS files (mqtt.ca_file / cert_file / key_file): "
                                         f"{getattr(exc, 'strerror', None) or exc}") from None
        return ConnectOptions(self.address, self.names.client_id, s.protocol, s.username, password, context,
                              s.keepalive, s.connect_timeout, s.max_inflight)

    def _connected(self, connection: Connection) -> None:
        self.connection = connection
        self.core.metrics.inc("gatewayd_mqtt_connects_total", result="ok")
        again = f" after {self.attempts} failed attempts" if self.attempts else ""
        log.info("MQTT: connected to %s as %s%s; publishing from seq %d (%d records behind)", self.address,
                 self.names.client_id, again, self.acked_seq + 1, self.backlog)
        self.attempts = 0
        self.last_error = self.last_error_kind = None
        self._set_state("connected")

    def _failed(self, failure: MqttFailure) -> None:
        self.attempts += 1
        self.core.metrics.inc("gatewayd_mqtt_connects_total", result=failure.kind)
        state = {"auth": "auth_failed", "tls": "tls_failed", "config": "config_error"}.get(failure.kind,
                                                                                         "disconnected")
        if failure.message != self.last_error:  # one line per kind of trouble, not one per retry
            level = logging.WARNING if failure.kind in ("lost", "network") else logging.ERROR
            log.log(level, "MQTT: %s (retrying with backoff; the journal keeps what is not published)",
                    failure.message)
        else:
            log.debug("MQTT: %s (attempt %d)", failure.message, self.attempts)
        self.last_error, self.last_error_kind = failure.message, failure.kind
        self._set_state(state)

    async def _session(self, connection: Connection) -> None:
        with trio.CancelScope() as scope:
            self._session_scope = scope
            try:
                async with trio.open_nursery() as nursery:
                    connection.bind(nursery.cancel_scope)
                    await nursery.start(connection.serve)
                    if self.settings.commands:
                        send, receive = trio.open_memory_channel(COMMAND_QUEUE)
                        self._command_send = send
                        nursery.start_soon(connection.until_failure, self._handle_commands, connection, receive)
                    nursery.start_soon(connection.until_failure, self._publish, connection)
            finally:
                self._session_scope = None
                self._command_send = None

    # -- publishing ------------------------------------------------------------------------------------
    async def _publish(self, connection: Connection) -> None:
        tracker = self._tracker = AckTracker(self.acked_seq)
        follower = JournalFollower(self.core.hub, self.core.journal_dir, self.acked_seq, max_batch=FOLLOW_BATCH)
        pacer = Pacer(self.settings.publish_rate, trio.current_time())
        qos, window, prefix, site = self.settings.qos, connection.window, self.names.prefix, self.names.site
        directory, zone, hub, comms = self._directory, self._zone, self.core.hub, self.core.comms
        while True:
            for record in await follower.next_batch():
                if not has_events(record.type, comms):
                    if tracker.skip(record.seq):
                        self._moved(tracker)
                    continue
                events = record_events(record, directory, zone, comms=comms, site=site)
                if not events:
                    if tracker.skip(record.seq):
                        self._moved(tracker)
                    continue
                if hub.fanned_seq - record.seq > PACE_FROM:
                    delay = pacer.delay(trio.current_time(), self.settings.publish_rate)
                    if delay > 0:
                        await trio.sleep(delay)
                tracker.begin(record.seq)
                for event in events:
                    while tracker.in_flight >= window or tracker.open_records >= MAX_OPEN_RECORDS:
                        await self._acked.wait()  # no timeout: a PUBACK or the connection's end ends it
                        self._acked = trio.Event()
                    try:
                        mid = connection.publish(event_topic(prefix, event), orjson.dumps(event.body), qos)
                    except ValueError as exc:  # too large for MQTT: it can never be sent
                        self._rlog.log("too_large", logging.ERROR, "MQTT: seq %d not published: %s", record.seq, exc)
                        continue
                    if qos:
                        tracker.sent(mid)
                    self.published += 1
                if tracker.end():
                    self._moved(tracker)
                connection.poke()
            await trio.lowlevel.checkpoint()

    def _on_ack(self, mid: int, refused: bool) -> None:
        """A PUBACK (inside paho's read, on the trio thread)."""
        if refused:  # MQTT 5: the broker took the message but will not deliver it (e.g. not authorized)
            self.refused += 1
            self._rlog.log("refused", logging.WARNING, "MQTT: the broker refused a message (MQTT 5 reason code); "
                           "check the ACL for %s/#", self.names.prefix)
        tracker = self._tracker
        if tracker is not None and tracker.acked(mid):
            self._moved(tracker)
        self._acked.set()

    def _moved(self, tracker: AckTracker) -> None:
        self.acked_seq = tracker.acked_seq
        self._cursor_moved.set()

    async def _save_cursor(self) -> None:
        saved = self.acked_seq
        while True:
            await self._cursor_moved.wait()  # no timeout: nothing to save until it moves
            self._cursor_moved = trio.Event()
            if self.acked_seq != saved:
                saved = self.acked_seq
                await self.core.cursors.asave(CURSOR, saved)
            await trio.sleep(CURSOR_SAVE_INTERVAL)

    async def _sample_rate(self) -> None:
        while True:
            self._meter.sample(trio.current_time(), self.published)
            await trio.sleep(1.0)

    # -- the backlog's bound ---------------------------------------------------------------------------
    async def _watch_backlog(self) -> None:
        while True:
            limit = self.settings.max_backlog_records
            if self.backlog > limit and self._drop_to is None:
                # Down to 90 % of the limit, so drops come in chunks, each one record, not one per record.
                self._drop_to = self.journal_seq - (limit - limit // 10)
                if self._session_scope is not None:
                    self._session_scope.cancel()  # the connection loop drops, then reconnects
                elif self.connection is None and self.state != "connecting":
                    await self._drop_backlog()
            await trio.sleep(BACKLOG_CHECK_INTERVAL)

    async def _drop_backlog(self) -> None:
        to_seq, self._drop_to = self._drop_to, None
        if to_seq is None or to_seq <= self.acked_seq:
            return
        first = self.acked_seq + 1
        data = {"from_seq": first, "to_seq": to_seq, "records": to_seq - first + 1,
                "max_backlog_records": self.settings.max_backlog_records, "broker": str(self.address)}
        try:
            await self.core.hub.publish(BACKLOG_DROPPED, data)
        except (JournalUnavailable, trio.TooSlowError) as exc:
            log.error("MQTT: backlog over its limit, but the drop cannot be recorded (%s); keeping it", exc)
            return
        self.acked_seq = to_seq
        self._cursor_moved.set()  # (one task writes the cursor file, so writes never cross)
        self.dropped_records += to_seq - first + 1
        log.warning("MQTT: the broker fell more than %d records behind; records %d to %d will not be published",
                    self.settings.max_backlog_records, first, to_seq)

    # -- commands down ---------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        """A message on a subscribed topic (inside paho's read). Queued for `_handle_commands`."""
        connection, send = self.connection, self._command_send
        if send is not None and self._command_bucket.take(time.monotonic()):
            try:
                send.send_nowait((topic, payload, mid, qos))
                return
            except trio.WouldBlock:
                pass
        self.commands["dropped"] += 1
        self.core.metrics.inc("gatewayd_mqtt_commands_total", result="dropped")
        self._rlog.log("commands_dropped", logging.WARNING, "MQTT: commands arrive faster than %g/s; extra ones "
                       "are dropped", COMMANDS_PER_SECOND)
        if connection is not None:
            connection.ack(mid, qos)

    async def _handle_commands(self, connection: Connection, receive: trio.MemoryReceiveChannel) -> None:
        connection.subscribe(command_filters(self.names.prefix), 1)
        async with receive:
            async for topic, payload, mid, qos in receive:
                target = parse_command_topic(self.names.prefix, topic)
                if target is not None:
                    await self._command(*target, payload)
                connection.ack(mid, qos)  # after the command (or its refusal) is durable

    async def _command(self, subject: str, ident: str, payload: bytes) -> None:
        try:
            with trio.fail_after(self.core.settings.journal.durable_timeout + 5):
                await mqtt_commands.execute(self.core, subject, ident, payload)
            result = "accepted"
        except mqtt_commands.CommandRefused as exc:
            result = "refused"
            try:
                await self.core.hub.publish(COMMAND_REJECTED, {"subject": subject, "id": ident[:128],
                                                               "source": "mqtt", "error": exc.details[:500]})
            except (JournalUnavailable, trio.TooSlowError) as failure:
                log.error("MQTT: a refused command to %s %s could not be recorded: %s", subject, ident[:64], failure)
        except (JournalUnavailable, trio.TooSlowError) as exc:
            result = "refused"
            log.error("MQTT: a command to %s %s was not queued: %s", subject, ident[:64], exc)
        self.commands[result] += 1
        self.core.metrics.inc("gatewayd_mqtt_commands_total", result=result)


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


# -- on /monitor/actions ----------------------------------------------------------------------------------
def _backlog_dropped_action(record: Record) -> Action:
    return Action("mqtt_backlog_dropped", "mqtt", record.data.get("broker", "mqtt"), dict(record.data),
                  parse_ts(record.ts), record.seq)


def _command_rejected_action(record: Record) -> Action:
    d = record.data
    return Action("command_rejected", d.get("source") or "northbound", f"{d.get('subject')}:{d.get('id')}",
                  {"error": d.get("error")}, parse_ts(record.ts), record.seq)


COMMS = Comms(
    actions={
        BACKLOG_DROPPED: _backlog_dropped_action,
        COMMAND_REJECTED: _command_rejected_action,
    },
)

"""The device WebSocket `/ws` (JSON and XML dialects, attendance terminals), and the other
`terminals.ws_paths`, which accept attendance terminals only.

Per connection: the first frame (within `devices.register_timeout`) fixes the dialect, unless a
subprotocol (`gatewayd.json` / `gatewayd.xml`) was negotiated. A device then registers, and the
session reads messages while a second task delivers its queued commands; `WsConnection` owns the
writer and the heartbeat deadline. These paths are served as plain ASGI in front of the web framework
(`WEBSOCKETS`, gatewayd/web/asgi_ws.py).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from functools import partial
from typing import Awaitable

import trio

from ...journal.record import utc_now_iso
from ...journal.writer import JournalUnavailable
from . import json_codec as device_json, xml_codec as device_xml
from .messages import Ack, Attendance, Command, CommandResult, Error, Event, Ping, Pong, Register, Registered, Telemetry
from .dialect import choose_dialect, select_subprotocol
from ...errors import ProtocolError
from ...ratelimit import KeyedBuckets, source_key
from .service import AuthFailed
from ...web.asgi_ws import AsgiWebSocket, WsRoute
from ...web.wsconn import CLOSE_AUTH_FAILED, CLOSE_BAD_MESSAGE, CLOSE_REGISTER_TIMEOUT, CLOSE_SLOW, ConnectionEnded, WsConnection

log = logging.getLogger("gatewayd.device_ws")

DEVICE_PATH = "/ws"
REFUSED_METRIC = "gatewayd_ws_refused_total"
REFUSALS = {
    "unregistered_per_source": "too many connections from this address have not registered yet",
    "handshake_rate": "too many connections from this address per second",
}


def _setup(core) -> None:
    core.extras[ADMISSION] = Admission(core.settings.devices)
    for reason in (*REFUSALS, "busy"):
        core.metrics.counters[(REFUSED_METRIC, (("reason", reason),))] += 0
    core.metrics.describe(REFUSED_METRIC, "Device and terminal WebSockets refused, by reason: per-source limits "
                          "(HTTP 503 at the handshake) or busy (no registration slot in time: close 1013).")


def _serve(core, ws: AsgiWebSocket, path: str, *, devices_allowed: bool = True) -> Awaitable[None]:
    # Not a coroutine function: it hands back what serves the connection (nothing of it waits
    # along for the connection's whole life); the ticket is given back when the connection ends.
    admission = core.extras[ADMISSION]
    ticket = admission.enter(ws.remote_addr)
    if isinstance(ticket, str):
        core.metrics.inc(REFUSED_METRIC, reason=ticket)
        return ws.refuse(503, f"{REFUSALS[ticket]}; retry in a few seconds", (("Retry-After", "5"),))
    try:
        ws.deliver_eagerly()
        conn = WsConnection(ws, heartbeat=core.settings.presence.ws_timeout,
                            queue_size=core.settings.devices.send_queue, connections=core.connections)
        subprotocol = select_subprotocol(conn.subprotocols) if devices_allowed else None
        return conn.run(DeviceSession(core, conn, ticket, devices_allowed).serve, subprotocol=subprotocol,
                        on_end=ticket.leave)
    except BaseException:
        ticket.leave()
        raise


def _terminal_paths(settings) -> list[str]:
    return [path for path in settings.terminals.ws_paths if path != DEVICE_PATH]


# Devices (and terminals) on /ws; terminals only on the other terminals.ws_paths.
WEBSOCKETS = (WsRoute(_serve, paths=(DEVICE_PATH,), setup=_setup),
              WsRoute(partial(_serve, devices_allowed=False), paths=_terminal_paths))


ADMISSION = "device_ws.admission"


class Admission:
    """Who may open a device or terminal WebSocket, and when it may register.

    Per source address (an IPv6 /64 counts as one): at most `max_unregistered_per_source`
    connections that have not registered yet, and new handshakes at most at
    `handshakes_per_second_per_source` (a burst of `handshake_burst_per_source`); beyond either,
    the handshake is refused with 503 and Retry-After. A connection that sends nothing is cut after
    `first_frame_timeout`. A registration slot (at most `max_registering` at once, first come first
    served) is taken only when the first frame has arrived: idle sockets hold none, so no single
    source can keep the others from registering. A connection that sent its register message waits
    for a slot up to `register_queue_timeout` (it holds its socket and that one frame meanwhile)."""

    def __init__(self, settings):
        self.settings = settings  # the live DeviceSettings: the per-source limits are reloadable
        self._slots = trio.Semaphore(settings.max_registering)
        self._unregistered: dict[str, int] = {}
        self._handshakes = KeyedBuckets()

    def enter(self, remote: str) -> "Ticket | str":
        """A ticket for a new connection, or the reason it is refused (a key of REFUSALS)."""
        source = source_key(remote)
        cfg = self.settings
        if self._unregistered.get(source, 0) >= cfg.max_unregistered_per_source:
            return "unregistered_per_source"
        if not self._handshakes.take(source, trio.current_time(), cfg.handshakes_per_second_per_source,
                                     cfg.handshake_burst_per_source):
            return "handshake_rate"
        self._unregistered[source] = self._unregistered.get(source, 0) + 1
        return Ticket(self, source)

    def _registered(self, source: str) -> None:
        left = self._unregistered[source] - 1
        if left:
            self._unregistered[source] = left
        else:
            del self._unregistered[source]

    def unregistered(self, remote: str) -> int:
        return self._unregistered.get(source_key(remote), 0)

    async def slot(self, deadline: float) -> "Slot | None":
        """A registration slot, or None if none came free before `deadline` (trio clock)."""
        with trio.move_on_at(deadline):
            await self._slots.acquire()
            return Slot(self._slots)
        return None

    @property
    def waiting(self) -> int:
        return self._slots.statistics().tasks_waiting


class Ticket:
    """One admitted connection; it counts against its source until it registered or ended."""

    __slots__ = ("_admission", "_source")

    def __init__(self, admission: Admission, source: str):
        self._admission: Admission | None = admission
        self._source = source

    def leave(self) -> None:
        """The connection registered (or ended): it no longer counts as unregistered. Idempotent."""
        if self._admission is not None:
            self._admission, admission = None, self._admission
            admission._registered(self._source)

    registered = leave


class Slot:
    __slots__ = ("_slots",)

    def __init__(self, slots: trio.Semaphore):
        self._slots: trio.Semaphore | None = slots

    def release(self) -> None:
        """Give the slot back; later calls do nothing (called when registration ends, and at the end)."""
        if self._slots is not None:
            self._slots, slots = None, self._slots
            slots.release()


def _slot_deadline(cfg, dialect: str, first, register_deadline: float) -> float:
    """How long a connection may wait for a registration slot. One whose first frame is a register
    message waits up to `register_queue_timeout` from now (a reconnect storm is served in turn instead
    of bouncing); anything else only until `register_timeout` ends, as for the registration itself."""
    codec = device_xml if dialect == "xml" else device_json
    try:
        is_register = isinstance(codec.decode(first, max_chars=cfg.max_frame_bytes), Register)
    except ProtocolError:
        return register_deadline
    if not is_register:
        return register_deadline
    return max(register_deadline, trio.current_time() + cfg.register_queue_timeout)


async def _serve_terminal(core, conn: WsConnection, first) -> None:
    try:
        from ..terminals import ws as terminal_ws
    except ImportError:
        conn.request_close(CLOSE_BAD_MESSAGE, "attendance terminals are not supported")
        return
    if isinstance(first, (bytes, bytearray)):
        first = bytes(first).decode("utf-8", errors="replace")
    await terminal_ws.serve_terminal(core, conn, first)


def _send_error_json(conn: WsConnection, code: str, message: str) -> None:
    conn.send_nowait(device_json.encode(Error(code, message)))


class DeviceSession:
    """One registered (or registering) device connection."""

    # One per connection, from the handshake on (tens of thousands live at once): slots, and one
    # coroutine (`serve`) for the whole connection, registration included.
    __slots__ = ("core", "conn", "ticket", "devices_allowed", "dialect", "codec", "devices", "presence", "commands",
                 "session_id", "device_id", "device", "errors", "last_frame", "_delivering", "_attached", "_max_chars")
    connector = "ws"

    def __init__(self, core, conn: WsConnection, ticket: Ticket, devices_allowed: bool = True):
        self.core = core
        self.conn = conn
        self.ticket = ticket
        self.devices_allowed = devices_allowed
        self.dialect = "json"
        self.codec = device_json
        self.devices = core.service("devices")
        self.presence = core.service("presence")
        self.commands = core.service("commands")
        self.session_id = ""
        self.device_id: str | None = None
        self.device: dict | None = None
        self.errors = 0
        self.last_frame = time.time()
        self._delivering = False
        self._attached = False
        self._max_chars = core.settings.devices.max_frame_bytes

    # -- presence hooks -------------------------------------------------------------------------------
    def request_close(self, code: int, reason: str) -> None:
        self.conn.request_close(code, reason)

    def wake(self) -> None:
        """Commands are waiting: start the delivery task unless it runs already."""
        if not self._delivering and self.device_id is not None and not self.conn.ending \
                and self.commands.next_to_send(self.device_id, self.session_id) is not None:
            self._delivering = True
            self.conn.spawn(self._deliver_commands)

    # -- replies ----------------------------------------------------------------------------------------
    async def reply(self, msg) -> None:
        """Queue a reply, waiting for room: a device that sends faster than it reads is slowed down,
        and one that stops reading is dropped with 1013 (raises ConnectionEnded)."""
        try:
            text = self.codec.encode(msg)
        except ProtocolError:
            text = self.codec.encode(Error("invalid", "the reply could not be written in this dialect"))
        await self.conn.send(text)

    async def error(self, code: str, message: str) -> None:
        await self.reply(Error(code, message))

    async def bad_message(self, exc: ProtocolError) -> None:
        self.errors += 1
        await self.error(exc.code, exc.message)
        if self.errors >= self.core.settings.devices.max_consecutive_errors:
            self.conn.request_close(CLOSE_BAD_MESSAGE, f"{self.errors} bad messages in a row")

    # -- the session --------------------------------------------------------------------------------------
    async def serve(self, conn: WsConnection) -> "DeviceSession | None":
        """Up to the registration: the first frame (within `devices.register_timeout`) fixes the
        dialect; terminals go to their own session, a device waits for a registration slot and
        registers. A registered session is handed back: the connection then gives it every frame
        (`on_frames`) until it ends (`frames_ended`), with nothing of this method waiting along."""
        core = self.core
        cfg = core.settings.devices
        now = trio.current_time()
        deadline = now + cfg.register_timeout
        first = None
        with trio.move_on_at(min(deadline, now + cfg.first_frame_timeout)):
            first = await conn.receive()
        if first is None:
            _send_error_json(conn, "not_registered", "no registration within the time limit")
            conn.request_close(CLOSE_REGISTER_TIMEOUT, "registration timeout")
            return
        dialect = choose_dialect(conn.subprotocols if conn.subprotocol else None, first)
        if dialect == "terminal":
            self.ticket.registered()
            await _serve_terminal(core, conn, first)
            return
        if not self.devices_allowed:
            _send_error_json(conn, "unknown_type", f"only attendance terminals connect on {conn.path}; devices use /ws")
            conn.request_close(CLOSE_BAD_MESSAGE, "not an attendance terminal")
            return
        slot = await core.extras[ADMISSION].slot(_slot_deadline(cfg, dialect, first, deadline))
        if slot is None:
            core.metrics.inc(REFUSED_METRIC, reason="busy")
            _send_error_json(conn, "unavailable", "too many devices are registering; retry in a few seconds")
            conn.request_close(CLOSE_SLOW, "too many registrations at once")
            return
        conn.touch()  # the heartbeat runs from here: the time spent queued was the server's, not the device's
        self.dialect = dialect
        self.codec = device_xml if dialect == "xml" else device_json
        self.session_id = self.presence.new_session_id()
        handed_over = False
        try:
            accepted = await self._register(first, deadline)
            slot.release()  # the registration is over, accepted or not
            self.ticket.registered()
            if accepted:
                self.wake()
                handed_over = True
                return self  # the connection hands this session every later frame (on_frames)
        except ConnectionEnded:
            pass
        finally:
            slot.release()
            if not handed_over:
                self.frames_ended()
        return None

    def frames_ended(self) -> None:
        """The connection is over (or the registration failed): end the device's presence."""
        if self._attached:
            self._attached = False
            conn = self.conn
            reason = conn.close_reason or "connection closed"
            seen = datetime.fromtimestamp(self.last_frame, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self.presence.detach(self, reason=reason, code=conn.close_code, last_seen=seen)

    async def _register(self, frame, deadline: float) -> bool:
        while True:
            try:
                msg = self.codec.decode(frame, max_chars=self._max_chars)
            except ProtocolError as exc:
                await self.bad_message(exc)
            else:
                if isinstance(msg, Register):
                    return await self._authenticate(msg)
                self.errors += 1
                await self.error("not_registered", "register first: {\"type\":\"register\",\"device_id\":...,\"token\":...}"
                           if self.dialect == "json" else "register first: <register device_id=\"...\" token=\"...\"/>")
            if self.conn.ending:
                return False
            frame = None
            with trio.move_on_at(deadline):
                frame = await self.conn.receive()
            if frame is None:
                await self.error("not_registered", "no registration within the time limit")
                self.conn.request_close(CLOSE_REGISTER_TIMEOUT, "registration timeout")
                return False

    async def _authenticate(self, msg: Register) -> bool:
        access = self.core.access
        source = self.conn.remote
        if access.blocked("device_token", source):
            await self.error("auth_failed", "too many failed registrations from this address; try later")
            self.conn.request_close(CLOSE_AUTH_FAILED, "authentication failed")
            return False
        try:
            device = self.devices.authenticate(msg.device_id, msg.token)
        except AuthFailed as exc:
            await access.record_failure("device_token", source, msg.device_id)
            await self.error("auth_failed", str(exc))
            self.conn.request_close(CLOSE_AUTH_FAILED, "authentication failed")
            return False
        self.device_id, self.device = device["id"], device
        token_hash = device["token_hash"]
        try:
            await self.presence.attach(self, device, remote=source, dialect=self.dialect)
        except JournalUnavailable:
            await self.error("unavailable", "the server cannot record the registration right now; retry later")
            self.conn.request_close(CLOSE_SLOW, "journal unavailable")
            return False
        self._attached = True
        if not self.devices.token_matches(device["id"], token_hash):  # rotated or disabled meanwhile
            await self.error("auth_failed", "the token was changed or the device disabled")
            self.conn.request_close(CLOSE_AUTH_FAILED, "token changed during registration")
            return False
        self.errors = 0
        await self.reply(Registered(device["id"], utc_now_iso()))
        return True

    async def _on_frames(self, frames: list) -> None:
        """Handle the frames that arrived together, in order. Telemetry and events are journaled and
        applied as they come, without a wait each; the acks they owe go out once their records are
        durable, before any later reply (so replies keep the order of the frames)."""
        self.last_frame = time.time()
        owed: list = []  # (msg_id, journal batch) of stored messages not acknowledged yet
        hub = self.core.hub
        for frame in frames:
            if self.conn.ending:
                break
            if not self.presence.allow_message(self.device_id):
                await self._acknowledge(owed)
                await self.error("rate_limited", "too many messages; this one was not stored")
                continue
            try:
                msg = self.codec.decode(frame, max_chars=self._max_chars)
            except ProtocolError as exc:
                await self._acknowledge(owed)
                await self.bad_message(exc)
                continue
            self.errors = 0
            kind = type(msg)
            if kind is not Telemetry and kind is not Event:
                await self._acknowledge(owed)
                await self._handlers[kind](self, msg)
                continue
            if hub.crowded:
                await self._acknowledge(owed)
                await hub.wait_for_room()
            msg_id = msg.msg_id
            try:
                batch = self.devices.append(self.device, msg, msg_id is not None, dialect=self.dialect)
            except JournalUnavailable:
                await self._acknowledge(owed)
                await self.error("unavailable", "the server cannot store messages right now; retry later")
                continue
            if msg_id is not None:
                owed.append((msg_id, batch))
        await self._acknowledge(owed)

    async def _acknowledge(self, owed: list) -> None:
        """Ack each stored message once its record is durable (or say it could not be stored)."""
        if not owed:
            return
        done = owed[:]
        owed.clear()
        for msg_id, batch in done:
            try:
                await batch.wait()
            except JournalUnavailable:
                await self.error("unavailable", "the server cannot store messages right now; retry later")
                continue
            await self.reply(Ack(msg_id))

    async def _attendance(self, msg: Attendance) -> None:
        service = self.core.services.get("attendance")
        if service is None:
            await self.error("unsupported", "this server does not store attendance records")
            return
        try:
            await service.ingest(self.device_id, msg.records, connector="ws")
        except JournalUnavailable:
            await self.error("unavailable", "the server cannot store messages right now; retry later")
            return
        if msg.msg_id is not None:
            await self.reply(Ack(msg.msg_id))

    async def _ping(self, msg: Ping) -> None:
        await self.reply(Pong(utc_now_iso()))

    async def _command_result(self, msg: CommandResult) -> None:
        try:
            problem = await self.commands.result(self.device_id, msg.command_id, msg.ok, msg.result, msg.error)
        except JournalUnavailable:
            await self.error("unavailable", "the server cannot store messages right now; retry later")
            return
        if problem:
            await self.error("invalid", problem)

    async def _register_again(self, msg: Register) -> None:
        await self.error("invalid", "already registered on this connection")

    _handlers = {Attendance: _attendance, Ping: _ping,
                 CommandResult: _command_result, Register: _register_again}

    on_frames = _on_frames  # (FrameReader, gatewayd/web/wsconn.py)

    # -- commands -----------------------------------------------------------------------------------------
    async def _deliver_commands(self) -> None:
        """Send the device's waiting commands in order; end when none is left (`wake` restarts it).
        The attempt is journaled before the frame goes out: a device never gets more deliveries than
        the journal counts, even across a crash."""
        commands = self.commands
        try:
            while (command := commands.next_to_send(self.device_id, self.session_id)) is not None:
                if not self.presence.is_live(self) or self.conn.ending:
                    return
                if await commands.settle_if_due(command):
                    continue
                try:
                    text = self.codec.encode(Command(command["id"], command["command"], command["payload"]))
                except ProtocolError as exc:
                    await commands.mark_failed(command, f"cannot be written in the {self.dialect} dialect: "
                                                        f"{exc.message}")
                    continue
                await commands.mark_sent(command, self.session_id)
                await self.conn.send(text)
        except ConnectionEnded:
            pass
        except JournalUnavailable:
            self.conn.request_close(CLOSE_SLOW, "journal unavailable")
        finally:
            self._delivering = False

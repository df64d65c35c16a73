"""One server-side WebSocket: one writer task fed by a bounded channel, a heartbeat deadline, and a
close that any task may request. The writer runs only while frames are queued (an idle connection
holds no task of its own besides the handler), and never more than one at a time.

Only the writer ever calls `websocket.send` / `websocket.close` (hypercorn's sends are shielded and
cannot be timed out from outside, and after a disconnect they may return without a checkpoint, so
they live in one task that always waits on its channel between sends).

    conn = WsConnection(websocket, heartbeat=90.0, queue_size=64)
    await conn.run(session, subprotocol="gatewayd.json")   # session(conn) reads and replies

`receive()` moves the heartbeat deadline on every frame; when the deadline passes, or when
`request_close()` is called, the pending (and every later) `receive()` raises `ConnectionEnded`.
When the peer vanishes, quart cancels the handler: the session sees `trio.Cancelled`.
"""

from __future__ import annotations

import logging
import math
from typing import Awaitable, Callable, Protocol

import trio

from .wsbatch import send_ping

log = logging.getLogger("gatewayd.ws")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_SLOW = 1013
CLOSE_BAD_MESSAGE = 4000
CLOSE_AUTH_FAILED = 4001
CLOSE_SUPERSEDED = 4002
CLOSE_REGISTER_TIMEOUT = 4008
CLOSE_IDLE_TIMEOUT = 4009

FLUSH_TIMEOUT = 2.0  # queued frames get this long to go out before the close frame
BATCH_MOST = 64  # frames handed to a FrameReader in one turn, at most


class ConnectionEnded(Exception):
    """The connection is over (close requested, heartbeat expired); `code` is the close code."""

    def __init__(self, code: int | None, reason: str = ""):
        super().__init__(f"connection ended ({code}: {reason})" if code else "connection ended")
        self.code = code
        self.reason = reason


class FrameReader(Protocol):
    """What a session may hand back to `WsConnection.run` to be given every later frame."""

    async def on_frames(self, frames: list[str | bytes]) -> None: ...

    def frames_ended(self) -> None: ...


def _nothing_queued():
    raise trio.WouldBlock


class WsConnection:
    # Tens of thousands of these live at once (one per device): slots, a plain list as the bounded
    # outbox (a memory channel costs ~1.7 KB per connection), and the rarely used parts (waiting
    # senders, helper tasks, the closed event) made on first use.
    __slots__ = ("websocket", "remote", "path", "subprotocols", "subprotocol", "heartbeat", "send_timeout",
                 "close_code", "close_reason", "_connections", "_outbox", "_queue_size", "_room", "_deadline",
                 "_receive_scope", "_closed", "_done", "_nursery", "_writer_running",
                 "_close_sent", "_helpers", "_session_over", "_pinged")

    def __init__(self, websocket, *, heartbeat: float, queue_size: int = 64, send_timeout: float = 10.0,
                 connections=None, ping: bool = False):
        self.websocket = websocket
        self.remote: str = websocket.remote_addr or ""
        self.path: str = websocket.path
        subprotocols = websocket.requested_subprotocols
        self.subprotocols: list[str] = subprotocols if isinstance(subprotocols, list) else list(subprotocols or ())
        self.subprotocol: str | None = None
        self.heartbeat = heartbeat
        self.send_timeout = send_timeout
        self.close_code: int | None = None
        self.close_reason = ""
        self._connections = connections
        self._outbox: list[str | bytes] = []
        self._queue_size = max(1, queue_size)
        self._room: trio.lowlevel.ParkingLot | None = None  # senders waiting for room in the outbox
        self._deadline = trio.current_time() + heartbeat
        self._receive_scope: trio.CancelScope | None = None
        self._closed: trio.Event | None = None
        self._done = False
        self._nursery: trio.Nursery | None = None
        self._writer_running = False
        self._close_sent = False
        self._helpers: set[trio.CancelScope] | None = None
        self._session_over = False
        self._pinged = ping  # pinged by `connections` now and then (peers that may stay silent for long)

    # -- for the session ----------------------------------------------------------------------------
    async def receive(self) -> str | bytes:
        """The next frame. Raises ConnectionEnded once a close was requested or the heartbeat expired."""
        if self.close_code is not None:
            raise ConnectionEnded(self.close_code, self.close_reason)
        receive_nowait = getattr(self.websocket, "receive_nowait", None)
        if receive_nowait is not None:
            # A frame already waiting needs no cancel scope (entering one with a deadline is a
            # good part of a small frame's cost); it is no checkpoint either, but the server's
            # queue holds only a few frames, so the session soon waits below.
            try:
                data = receive_nowait()
            except trio.WouldBlock:
                pass
            else:
                self.touch()
                return data
        with trio.CancelScope(deadline=self._deadline) as scope:
            self._receive_scope = scope
            try:
                data = await self.websocket.receive()
            finally:
                self._receive_scope = None
            self.touch()
            return data
        if self.close_code is None:  # the deadline passed: nothing arrived in time
            self.request_close(CLOSE_IDLE_TIMEOUT, f"nothing received for {self.heartbeat:g} s")
        raise ConnectionEnded(self.close_code, self.close_reason)

    async def each_frame(self, handle: Callable[[str | bytes], Awaitable[None]]) -> None:
        """Call `handle` with every frame until the connection ends, then raise ConnectionEnded like
        `receive`. One cancel scope serves the whole loop (a close request also cancels a `handle`
        under way): for peers that send many small frames, where a scope per frame shows."""
        if self.close_code is not None:
            raise ConnectionEnded(self.close_code, self.close_reason)
        receive = self.websocket.receive
        with trio.CancelScope(deadline=self._deadline) as scope:
            self._receive_scope = scope
            try:
                while True:
                    data = await receive()
                    self.touch()
                    await handle(data)
            finally:
                self._receive_scope = None
        if self.close_code is None:  # the deadline passed: nothing arrived in time
            self.request_close(CLOSE_IDLE_TIMEOUT, f"nothing received for {self.heartbeat:g} s")
        raise ConnectionEnded(self.close_code, self.close_reason)

    def touch(self) -> None:
        """Push the heartbeat deadline forward (every received frame does this)."""
        self._deadline = trio.current_time() + self.heartbeat
        if self._receive_scope is not None:
            self._receive_scope.deadline = self._deadline

    def send_nowait(self, text: str | bytes) -> bool:
        """Queue a frame; False when the queue is full or the connection is ending."""
        if self.close_code is not None or self._nursery is None or len(self._outbox) >= self._queue_size:
            return False
        self._outbox.append(text)
        self._ensure_writer()
        return True

    async def send(self, text: str | bytes) -> None:
        """Queue a frame, waiting for space up to `send_timeout` (then the peer is dropped: 1013)."""
        if self.close_code is not None or self._session_over:
            raise ConnectionEnded(self.close_code, self.close_reason)
        if len(self._outbox) >= self._queue_size:
            if self._room is None:
                self._room = trio.lowlevel.ParkingLot()
            with trio.move_on_after(self.send_timeout):
                while len(self._outbox) >= self._queue_size:
                    await self._room.park()
                    if self.close_code is not None or self._session_over:
                        raise ConnectionEnded(self.close_code, self.close_reason)
            if len(self._outbox) >= self._queue_size:
                self.request_close(CLOSE_SLOW, "not reading")
                raise ConnectionEnded(self.close_code, self.close_reason)
        self._outbox.append(text)
        self._ensure_writer()

    def request_close(self, code: int, reason: str = "") -> None:
        """End the connection with `code` (the first request wins). Safe from any task, never blocks."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason[:120]
        if self._receive_scope is not None:
            self._receive_scope.cancel()

    async def closed(self) -> None:
        if not self._done:
            if self._closed is None:
                self._closed = trio.Event()
            await self._closed.wait()

    async def ping(self) -> None:
        """A WebSocket ping (written beside the writer through the server's locked send path)."""
        if not self._close_sent:
            await send_ping(self.websocket)

    @property
    def ending(self) -> bool:
        return self.close_code is not None

    def spawn(self, async_fn: Callable[..., Awaitable[None]], *args) -> None:
        """Run a helper task for this connection; it is cancelled when the session ends."""
        scope = trio.CancelScope()
        if self._helpers is None:
            self._helpers = set()
        self._helpers.add(scope)

        async def helper() -> None:
            try:
                with scope:
                    await async_fn(*args)
            finally:
                self._helpers.discard(scope)

        self._nursery.start_soon(helper)

    # -- lifecycle ----------------------------------------------------------------------------------
    async def run(self, session: Callable[["WsConnection"], Awaitable["FrameReader | None"]], *,
                  subprotocol: str | None = None, on_end: Callable[[], None] | None = None) -> None:
        """Accept, run `session(self)`, then flush what is queued and close with `close_code`.

        The session may hand back a `FrameReader`: every later frame then goes to its `on_frames`,
        oldest first, each turn the frame waited for and every frame the server has queued behind
        it already (at most BATCH_MOST; those that came before the peer left are handed over
        first), until the connection ends, and then `frames_ended()` is called. Read that way, a
        close request interrupts only the wait for the next frames, never an `on_frames` under way
        (its replies still go out before the close frame; a reader that must stop between frames
        checks `ending`), and nothing of the session waits along: the
        many long-lived connections (devices) keep one coroutine and no cancel scope of their own
        (the heartbeat is the deadline of the connection's nursery, and a close request cancels
        that nursery while the reader waits; the writer shields itself and still flushes, helper
        tasks end). The deadline moves on only now and then, not per frame (moving a deadline is
        a good part of a small frame's cost): the heartbeat may end an idle connection up to a
        sixteenth of itself late.

        `on_end()` is called once the connection is over, however it ended (the peer may have
        left during the handshake already)."""
        self.subprotocol = subprotocol
        accepted = False
        try:
            # Routes read what they need of the upgrade request before: its headers are let go.
            await self.websocket.accept(subprotocol=subprotocol, keep_request=False)
            accepted = True
            if self._connections is not None:
                self._connections.add(self, ping=self._pinged)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                reader = None
                try:
                    reader = await session(self)
                    session = None  # (not kept for the connection's life)
                    if reader is not None and self.close_code is None:
                        # -- the frame loop (inline: no coroutine of its own per connection) --
                        websocket = self.websocket
                        receive = getattr(websocket, "asgi_receive", None)  # the server's own: one frame less
                        frame_of = getattr(websocket, "frame_of", None)
                        if receive is None or frame_of is None:
                            receive, frame_of = websocket.receive, None
                        receive_nowait = getattr(websocket, "receive_nowait", None) or _nothing_queued
                        heartbeat = self.heartbeat
                        slack = heartbeat / 16
                        scope = nursery.cancel_scope
                        scope.deadline = self._deadline + slack
                        try:
                            while self.close_code is None:
                                self._receive_scope = scope
                                try:
                                    data = await receive()
                                finally:
                                    self._receive_scope = None
                                frames = [frame_of(data) if frame_of is not None else data]
                                # ... and every frame the server has queued behind it already: a
                                # busy peer's frames cost one wait per turn, not one each.
                                left = None
                                while len(frames) < BATCH_MOST:
                                    try:
                                        frames.append(receive_nowait())
                                    except trio.WouldBlock:
                                        break
                                    except ConnectionEnded as exc:  # the peer left after these frames
                                        left = exc
                                        break
                                self._deadline = deadline = trio.current_time() + heartbeat
                                if deadline > scope.deadline:
                                    scope.deadline = deadline + slack
                                await reader.on_frames(frames)
                                if left is not None:
                                    raise left
                                frames = data = None  # not kept while waiting for the next ones
                        except trio.Cancelled:
                            if not scope.cancel_called:
                                raise  # not this connection's doing (the server is stopping)
                            # A close request or the heartbeat: the nursery stays cancelled, so the
                            # rest of the session ends without waiting on anything.
                            if self.close_code is None:  # the deadline passed: nothing arrived in time
                                self.request_close(CLOSE_IDLE_TIMEOUT, f"nothing received for {heartbeat:g} s")
                        finally:
                            if not scope.cancel_called:
                                scope.deadline = math.inf
                except ConnectionEnded:
                    pass
                except Exception:
                    log.exception("WebSocket session on %s from %s failed", self.path, self.remote)
                    self.request_close(1011, "internal error")
                finally:
                    if reader is not None:
                        reader.frames_ended()
                    self.request_close(CLOSE_NORMAL, "")
                    for helper in list(self._helpers or ()):
                        helper.cancel()
                    self._session_over = True
                    if self._room is not None:
                        self._room.unpark_all()
                    self._ensure_writer()  # drains what is queued, then sends the close frame
        except ConnectionEnded:
            if accepted:
                raise
            # the peer left before the handshake finished
        finally:
            if self._connections is not None:
                self._connections.discard(self)
            self._done = True
            if self._closed is not None:
                self._closed.set()
            if on_end is not None:
                on_end()

    def _ensure_writer(self) -> None:
        if not self._writer_running and self._nursery is not None:
            self._writer_running = True
            self._nursery.start_soon(self._writer)

    async def _writer(self) -> None:
        """Send what is queued, then end (an idle connection holds no writer task; the next queued
        frame starts one). Once the session is over and the outbox empty, send the close frame.
        Shielded: a close cancels the connection's nursery (the frame loop of `run`), and what is queued
        still goes out first, for at most FLUSH_TIMEOUT (the server's sends are shielded anyway)."""
        websocket = self.websocket
        outbox = self._outbox
        flush_until = None
        try:
            with trio.CancelScope(shield=True):
                while not self._close_sent:
                    if not outbox:
                        if not self._session_over:
                            return
                        break
                    frame = outbox.pop(0)
                    if self._room is not None:
                        self._room.unpark()
                    await websocket.send(frame)
                    await trio.lowlevel.checkpoint()  # a send to a vanished peer may not yield by itself
                    if self.close_code is not None:
                        flush_until = flush_until or trio.current_time() + FLUSH_TIMEOUT
                        if trio.current_time() > flush_until:
                            break
                if not self._close_sent:
                    self._close_sent = True
                    await websocket.close(self.close_code or CLOSE_NORMAL, self.close_reason)
        finally:
            self._writer_running = False

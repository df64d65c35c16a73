"""Several WebSocket messages in one socket write, for streams that send many frames per second.

ASGI has one message per WebSocket message: each `websocket.send` goes through hypercorn's stream
(a lock, a shielded write, wsproto) as one socket write with its scheduler turns, and a monitor
receiving thousands of frames a second would spend most of its time there. So this module is the
ONE place that reaches behind ASGI: `queued_receive(receive)` takes a frame hypercorn has
queued already, `deliver_eagerly(send)` lets hypercorn queue a busy peer's frames without a
scheduler turn each, and `hypercorn_stream(send)` finds the hypercorn WebSocket stream
whose `app_send` is the connection's ASGI `send`, and `BatchSender` hands it several encoded
messages as one write through the same locked path its own sends take; `send_ping` writes a
WebSocket ping the same way (ASGI has no message for one); `release_handshake(send)` lets go of
the HTTP/1.1 parser hypercorn keeps after the upgrade. Each message stays one
WebSocket message (one final frame). A client that negotiated no extension gets frames encoded
once for every client (`SharedText.frame`); otherwise the connection's wsproto encodes each
message (compression has per-connection state). tests/monitor/test_batched_send.py pins what
this relies on in the hypercorn we ship, and that no other module reaches behind ASGI.

On another server, or a hypercorn whose internals moved, `BatchSender.for_websocket` says so
(`batched` is False, logged once) and each message goes out as its own ASGI `websocket.send`.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Sequence

import trio

from .wsframe import SharedText

log = logging.getLogger("gatewayd.ws")

try:
    import h11
    from hypercorn.protocol.events import Data
    from hypercorn.protocol.h11 import H11WSConnection
    from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import TrioSingleTask
    from wsproto.connection import ConnectionState
    from wsproto.events import TextMessage
except ImportError:  # pragma: no cover - hypercorn is the server this daemon ships with
    WSStream = None

_warned = False


def hypercorn_stream(send) -> "WSStream | None":
    """The hypercorn WebSocket stream behind an ASGI `send` (its bound `app_send`), else None."""
    stream = getattr(send, "__self__", None)
    return stream if WSStream is not None and isinstance(stream, WSStream) else None


def queued_receive(receive):
    """A frame already queued behind an ASGI `receive`, taken without a wait: hypercorn's trio worker
    hands each connection the receive side of a memory channel, whose `receive_nowait` this is;
    None behind any other `receive`."""
    channel = getattr(receive, "__self__", None)
    return channel.receive_nowait if isinstance(channel, trio.MemoryReceiveChannel) else None


def deliver_eagerly(send) -> bool:
    """Let hypercorn queue a connection's frames without a scheduler turn per frame.

    hypercorn's read task hands each frame to the application with `await channel.send(...)`, which
    yields once per frame even when the queue has room: a reader then wakes once per frame. With
    this, a frame goes into the (bounded) queue at once and the read task yields only when the
    queue is full or it waits for the socket, so the application finds every frame of one socket
    read queued together. False (nothing changed) behind any other server."""
    stream = hypercorn_stream(send)
    put = getattr(stream, "app_put", None)
    channel = getattr(put, "__self__", None)
    if not isinstance(channel, trio.MemorySendChannel):
        return False
    stream.app_put = _EagerPut(channel)
    return True


class _EagerPut:
    """hypercorn's `app_put` for one connection: into the queue at once while it has room."""

    __slots__ = ("_channel",)  # one per connection: nothing else kept

    def __init__(self, channel: trio.MemorySendChannel):
        self._channel = channel

    def __call__(self, message) -> "Awaitable[None]":
        return _put_eagerly(self._channel.send_nowait, self._channel.send, message)


async def _put_eagerly(send_nowait, send, message) -> None:
    try:
        send_nowait(message)
    except trio.WouldBlock:
        await send(message)


# A server's ping: FIN + opcode 9, unmasked, no payload (control frames are never compressed, so
# this fits every connection whatever it negotiated).
PING_FRAME = b"\x89\x00"


async def send_ping(websocket) -> bool:
    """Write a ping to `websocket` (an `AsgiWebSocket`); False when it cannot be done (closing, or
    not hypercorn's stream). The peer's pong is consumed by the server."""
    stream = hypercorn_stream(getattr(websocket, "send_callable", None))
    if stream is None or not _stream_open(stream):
        await trio.lowlevel.checkpoint()
        return False
    await stream.send(Data(stream_id=stream.stream_id, data=PING_FRAME))
    return True


def _stream_open(stream) -> bool:
    # Like hypercorn's own send after a close, nothing goes out once the socket is closing.
    return not stream.closed and stream.state == ASGIWebsocketState.CONNECTED \
        and stream.connection.state == ConnectionState.OPEN


def release_handshake(send) -> bool:
    """Once a WebSocket is accepted, hypercorn keeps what only served its handshake: the HTTP/1.1
    parser (an h11 connection: state machine, buffers, ~1 KB) for answers it never sends again,
    the parsed handshake, of which it reads only `accepted` from then on, and the stopped
    keep-alive timer of the connection. All are replaced by one shared stand-in; True when done."""
    stream = hypercorn_stream(send)
    if stream is None or stream.state != ASGIWebsocketState.CONNECTED or not stream.handshake.accepted:
        return False
    stream.handshake = _HANDSHAKE_OVER
    protocol = getattr(stream.send, "__self__", None)  # hypercorn's H11Protocol (HTTP/1.1 only)
    connection = getattr(protocol, "connection", None)
    if isinstance(connection, H11WSConnection) and isinstance(connection.h11_connection, h11.Connection):
        connection.h11_connection = _HANDSHAKE_OVER
        # The connection's keep-alive timer (a task holder and its lock): stopped when the upgrade
        # request arrived, and only an HTTP/1.1 exchange between requests starts it again.
        server = getattr(protocol.send, "__self__", None)
        idle = getattr(server, "idle_task", None)
        if isinstance(server, TCPServer) and isinstance(idle, TrioSingleTask) and idle._handle is None:
            server.idle_task = _HANDSHAKE_OVER
    return True


class _HandshakeOver:
    """Stands in for an accepted handshake and the dropped h11 connection: nothing may go out as
    HTTP any more."""

    accepted = True

    def send(self, event):
        raise RuntimeError("this WebSocket's HTTP/1.1 handshake is over; nothing more goes out as HTTP")

    async def stop(self) -> None:  # the keep-alive timer: already stopped
        pass

    async def restart(self, task_group, action) -> None:
        raise RuntimeError("a WebSocket connection has no HTTP keep-alive timer")


_HANDSHAKE_OVER = _HandshakeOver()


class BatchSender:
    """Sends for one WebSocket (an `AsgiWebSocket`): several messages per write when batched."""

    def __init__(self, websocket, stream: "WSStream | None"):
        self._websocket = websocket
        self._stream = stream
        self.batched = stream is not None
        # Without an offer nothing can have been negotiated: the shared frames fit this client.
        self.shared_frames = self.batched and not websocket.headers.get("sec-websocket-extensions")

    @classmethod
    def for_websocket(cls, websocket) -> "BatchSender":
        global _warned
        stream = hypercorn_stream(websocket.send_callable)
        if stream is None and not _warned:
            _warned = True
            log.warning("WebSocket frames go out one by one: this server's stream was not recognised")
        return cls(websocket, stream)

    async def send(self, messages: Sequence[SharedText]) -> None:
        """Write `messages` in order, as one write when possible."""
        if not messages:
            return
        stream = self._stream
        if stream is None:
            for message in messages:
                await self._websocket.send(message.text)
            await trio.lowlevel.checkpoint()  # a send to a vanished peer may not yield by itself
            return
        if not self._open():
            await trio.lowlevel.checkpoint()  # (before encoding: a closed wsproto refuses to)
            return
        if self.shared_frames:
            data = b"".join([message.frame for message in messages])
        else:
            connection = stream.connection
            data = b"".join([connection.send(TextMessage(data=message.text)) for message in messages])
        await stream.send(Data(stream_id=stream.stream_id, data=data))

    async def send_frames(self, data: bytes) -> None:
        """Write frames encoded for this connection (`SharedText.frame`s when `shared_frames`)."""
        if not self._open():
            await trio.lowlevel.checkpoint()
            return
        stream = self._stream
        await stream.send(Data(stream_id=stream.stream_id, data=data))

    def _open(self) -> bool:
        # The callers' checkpoint keeps a loop that only sends from spinning.
        return _stream_open(self._stream)

"""Several WebSocket messages in one socket write, for streams that send many frames per second.

quart's `websocket.send` takes one message through quart, hypercorn (a lock, a shielded write)
and wsproto, with a socket write and two scheduler turns each; a monitor receiving thousands of
frames a second spends nearly all its time there, and one writer task cannot keep up with many
publishing tasks. hypercorn gives the ASGI app its WebSocket stream's own `app_send`; from it we
reach the stream, and hand several encoded messages to it as one write through the same locked
path its own sends take. Each message stays one WebSocket message (one final frame). A client
that negotiated no extension gets frames encoded once for every client (`SharedText.frame`);
otherwise the connection's wsproto encodes each message (compression has per-connection state).

On another server, or a hypercorn whose internals moved, `BatchSender.for_websocket` says so
(`batched` is False) and each message goes through `websocket.send`, as before.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Sequence

import trio

from .wsframe import SharedText

log = logging.getLogger("gatewayd.ws")

try:
    from hypercorn.protocol.events import Data
    from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
    from wsproto.connection import ConnectionState
    from wsproto.events import TextMessage
except ImportError:  # pragma: no cover - hypercorn is the server this daemon ships with
    WSStream = None

_warned = False


def _hypercorn_stream(websocket) -> "WSStream | None":
    target = getattr(websocket, "_get_current_object", lambda: websocket)()
    send = getattr(target, "_send", None)
    if isinstance(send, partial) and send.args:
        stream = getattr(send.args[0], "__self__", None)
        if WSStream is not None and isinstance(stream, WSStream):
            return stream
    return None


class BatchSender:
    def __init__(self, websocket, stream: "WSStream | None"):
        self._websocket = websocket
        self._stream = stream
        self.batched = stream is not None
        headers = getattr(websocket, "headers", None)
        offered = headers.get("Sec-WebSocket-Extensions") if headers is not None else None
        # Without an offer nothing can have been negotiated: the shared frames fit this client.
        self.shared_frames = self.batched and not offered

    @classmethod
    def for_websocket(cls, websocket) -> "BatchSender":
        global _warned
        stream = _hypercorn_stream(websocket)
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
        # Like hypercorn's own send after a close, nothing goes out once the socket is closing;
        # the callers' checkpoint keeps a loop that only sends from spinning.
        stream = self._stream
        return not stream.closed and stream.state == ASGIWebsocketState.CONNECTED \
            and stream.connection.state == ConnectionState.OPEN

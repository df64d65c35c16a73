"""/monitor/communications and /monitor/actions: the ResIOT-style monitoring WebSockets.

The handshake is refused (401, nothing echoed) without a valid API key (`?key=` or
`Authorization: Bearer`) or dashboard session, and (400) for a bad `since` or filter. Once open,
one task writes (the session's replay, then its live queue and the replies), one reads (TX
requests on the communications stream). A client that falls behind is closed with 1013 and a
reason naming the `since` to resume from.

Served as plain ASGI in front of the web framework (`WEBSOCKETS`, gatewayd/web/asgi_ws.py); the
frames of a turn go out in one socket write through gatewayd/web/wsbatch.py.
"""

from __future__ import annotations

import logging
import time

import trio

from .tx_request import tx_reply
from ...ratelimit import TokenBucket
from .session import ReplayFailed, SlowConsumer
from .tx_dispatch import refuse_tx, submit_tx
from ...web.asgi_ws import AsgiWebSocket, WsRoute
from ...web.auth import identify
from ...web.wsbatch import BatchSender, send_ping
from ...web.wsconn import ConnectionEnded

log = logging.getLogger("gatewayd.monitor")

PATHS = {"/monitor/communications": "communications", "/monitor/actions": "actions"}

TX_PER_SECOND = 20.0
TX_BURST = 50
CLOSE_TIMEOUT = 2.0
CLOSE_SLOW = 1013
CLOSE_INTERNAL = 1011
CLOSE_NORMAL = 1000


async def _serve(core, ws: AsgiWebSocket, path: str) -> None:
    stream = PATHS[path]
    source = ws.remote_addr
    if core.access.blocked("apikey", source):
        await ws.refuse_json(429, "rate_limited", "too many failed attempts from this address; try later")
        return
    handshake = ws.handshake
    operator = await identify(handshake, core)
    if operator is None:
        await ws.refuse_json(401, "unauthorized", "an API key is required (?key=... or Authorization: Bearer ...)")
        return
    monitor = core.service("monitor")
    try:
        flt = monitor.parse_filter(stream, handshake.args)
        since = monitor.parse_since(handshake.args.get("since"))
    except ValueError as exc:
        await ws.refuse_json(400, "invalid", str(exc))
        return
    try:
        await ws.accept()
    except ConnectionEnded:  # the client left during the handshake
        return
    conn = MonitorConnection(core, ws, stream, monitor.session(stream, flt, since), source, operator.actor)
    core.connections.add(conn, ping=True)  # clients only read: pings keep quiet ones connected
    try:
        await conn.serve()
    finally:
        core.connections.discard(conn)


WEBSOCKETS = (WsRoute(_serve, paths=tuple(PATHS)),)


class MonitorConnection:
    def __init__(self, core, ws: AsgiWebSocket, stream: str, session, remote: str, actor: str):
        self.core = core
        self.ws = ws
        self.stream = stream
        self.session = session
        self.remote = remote
        self.actor = actor
        self.path = f"/monitor/{stream}"
        self.close_code: int | None = None
        self._close_reason = ""
        self._scope = trio.CancelScope()
        self._done = trio.Event()
        self._tx_bucket = TokenBucket(TX_PER_SECOND, TX_BURST, time.monotonic())
        self.sender: BatchSender | None = None

    # ConnectionSet protocol: a stop closes every monitor with 1001.
    def request_close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self._close_reason = code, reason
        self._scope.cancel()

    async def closed(self) -> None:
        await self._done.wait()

    async def ping(self) -> None:
        await send_ping(self.ws)

    async def serve(self) -> None:
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read)
                    await self._write()
                    nursery.cancel_scope.cancel()
            await self._close()  # (nothing goes out once the peer left)
        finally:
            self.session.close()
            self._done.set()

    async def _write(self) -> None:
        try:
            self.sender = BatchSender.for_websocket(self.ws)
            sender = self.sender
            await self.session.run(sender.send, sender.send_frames if sender.shared_frames else None)
        except SlowConsumer as exc:
            self.core.service("monitor").note_dropped(self.stream)
            log.info("monitor %s from %s dropped as too slow (resume with since=%d)",
                     self.path, self.remote, exc.resume_seq)
            self.request_close(CLOSE_SLOW, f"too slow; resume with since={exc.resume_seq}")
        except ReplayFailed as exc:
            self.request_close(CLOSE_INTERNAL, str(exc)[:120])

    async def _close(self) -> None:
        # Shielded so a stop's cancellation cannot skip it; time-limited so it cannot hang us
        # (a stalled peer is finally cut by the socket's own timeouts).
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + CLOSE_TIMEOUT
            await self.ws.close(self.close_code or CLOSE_NORMAL, self._close_reason)

    async def _read(self) -> None:
        while True:
            try:
                frame = await self.ws.receive()
            except ConnectionEnded:  # the peer left: so does this connection
                self._scope.cancel()
                return
            if self.stream != "communications":
                outcome = refuse_tx(frame, "the actions stream takes no requests", 400)
            elif not self._tx_bucket.take(time.monotonic()):
                outcome = refuse_tx(frame, f"too many requests: at most {TX_PER_SECOND:g} TX per "
                                           "second on one connection")
            else:
                outcome = await submit_tx(self.core, frame)
            if outcome.ok:
                log.info("TX accepted from %s (%s), reference %r", self.actor, self.remote, outcome.reference)
            self.session.reply(tx_reply(outcome.ok, outcome.details, outcome.reference))

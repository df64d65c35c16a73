"""/monitor/communications and /monitor/actions: the ResIOT-style monitoring WebSockets.

The handshake is refused (401, nothing echoed) without a valid API key (`?key=` or
`Authorization: Bearer`) or dashboard session, and (400) for a bad `since` or filter. Once open,
one task writes (the session's replay, then its live queue and the replies), one reads (TX
requests on the communications stream). A client that falls behind is closed with 1013 and a
reason naming the `since` to resume from.
"""

from __future__ import annotations

import logging
import time

import trio
from quart import Blueprint, current_app, websocket

from .tx_request import tx_reply
from ...ratelimit import TokenBucket
from .session import ReplayFailed, SlowConsumer
from .tx_dispatch import refuse_tx, submit_tx
from ...web.auth import client_address, identify, json_error
from ...web.wsbatch import BatchSender

log = logging.getLogger("gatewayd.monitor")

blueprint = Blueprint("monitor_ws", __name__)

TX_PER_SECOND = 20.0
TX_BURST = 50
CLOSE_TIMEOUT = 2.0
CLOSE_SLOW = 1013
CLOSE_INTERNAL = 1011


@blueprint.websocket("/monitor/communications")
async def communications():
    return await _serve("communications")


@blueprint.websocket("/monitor/actions")
async def actions():
    return await _serve("actions")


async def _serve(stream: str):
    core = current_app.config["CORE"]
    source = client_address(websocket)
    if core.access.blocked("apikey", source):
        return json_error("rate_limited", "too many failed attempts from this address; try later", 429)
    operator = await identify(websocket)
    if operator is None:
        return json_error("unauthorized", "an API key is required (?key=... or Authorization: Bearer ...)", 401)
    monitor = core.service("monitor")
    try:
        flt = monitor.parse_filter(stream, websocket.args)
        since = monitor.parse_since(websocket.args.get("since"))
    except ValueError as exc:
        return json_error("invalid", str(exc), 400)
    await websocket.accept()
    conn = MonitorConnection(core, stream, monitor.session(stream, flt, since), source, operator.actor)
    core.connections.add(conn)
    try:
        await conn.serve()
    finally:
        core.connections.discard(conn)
    return None


class MonitorConnection:
    def __init__(self, core, stream: str, session, remote: str, actor: str):
        self.core = core
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

    async def serve(self) -> None:
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read)
                    await self._write()
                    nursery.cancel_scope.cancel()
            if self.close_code is not None:
                await self._close()
        finally:
            self.session.close()
            self._done.set()

    async def _write(self) -> None:
        try:
            self.sender = BatchSender.for_websocket(websocket)
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
            try:
                await websocket.close(self.close_code, self._close_reason)
            except RuntimeError:
                pass  # already closed

    async def _read(self) -> None:
        while True:
            frame = await websocket.receive()
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

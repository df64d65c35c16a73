"""An attendance terminal on the device WebSocket (cmd/ret frames, PROTOCOLS.md 3.2).

The device socket hands a connection over once its first frame reads `{"cmd":"reg",...}`. One task
reads: requests (`reg`, `sendlog`, `checklive`) are answered like their HTTP twins, replies to our
commands go to the terminal's `TerminalLink`. A second task, started by the first accepted `reg`,
pulls the backlog and then sends queued commands, one at a time.
"""

from __future__ import annotations

import logging

import trio

from ...journal.writer import JournalUnavailable
from . import codec as tp
from . import command_codec as tc
from . import fields as tf
from ...errors import ProtocolError
from .commands import LinkClosed, TerminalLink
from .service import CONNECTOR_WS
from ...web.wsconn import (CLOSE_AUTH_FAILED, CLOSE_BAD_MESSAGE, CLOSE_REGISTER_TIMEOUT, CLOSE_SUPERSEDED,
                           ConnectionEnded)

log = logging.getLogger("gatewayd.terminal_ws")

DETACH_TIMEOUT = 2.0


async def serve_terminal(core, conn, first_frame: str) -> None:
    """Serve one terminal connection until it ends (the caller owns `conn`)."""
    await TerminalSession(core, conn).run(first_frame)


class TerminalSession:
    def __init__(self, core, conn):
        self.core = core
        self.conn = conn
        self.terminals = core.service("terminals")
        self.commands = core.service("terminal_commands")
        self.sn: str | None = None
        self.link: TerminalLink | None = None
        self.errors = 0
        self.max_bytes = core.settings.devices.max_frame_bytes
        self._nursery: trio.Nursery | None = None

    async def run(self, first_frame: str) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._registration_deadline)
                try:
                    await self.on_frame(first_frame)
                    while True:
                        await self.on_frame(await self.conn.receive())
                except ConnectionEnded:
                    pass
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(DETACH_TIMEOUT):
                await self._detach()

    async def _registration_deadline(self) -> None:
        await trio.sleep(self.core.settings.devices.register_timeout)
        if self.link is None:
            self.conn.request_close(CLOSE_REGISTER_TIMEOUT, "no reg within the time limit")

    async def _detach(self) -> None:
        if self.link is None or self.terminals.links.get(self.sn) is not self.link:
            return  # never registered, or a newer connection took over
        del self.terminals.links[self.sn]
        try:
            await self.terminals.mark_offline(self.sn, CONNECTOR_WS, f"connection closed ({self.conn.close_code})")
        except JournalUnavailable:
            log.warning("terminal %s: could not record that it went offline", self.sn)

    async def send(self, text: str) -> None:
        await self.conn.send(text)

    async def _send_command(self, text: str) -> None:
        try:
            await self.conn.send(text)
        except ConnectionEnded:
            raise LinkClosed() from None

    # -- frames ---------------------------------------------------------------------------------------
    async def on_frame(self, frame: str | bytes) -> None:
        try:
            obj = tf.loads_lenient(frame, self.max_bytes)
        except ProtocolError as exc:
            await self._bad("error", exc)
            return
        if tc.is_reply(obj, self.link.awaited if self.link is not None else None):
            self._on_reply(obj)
            return
        try:
            req = tp.decode_request(obj)
        except ProtocolError as exc:
            if exc.code == "unknown_cmd":  # not a bad message: one of a kind we do not know
                await self.send(await self.terminals.unknown_message(obj, exc, CONNECTOR_WS, self.conn.remote))
                return
            cmd = obj.get("cmd")
            await self._bad(cmd.strip().lower() if isinstance(cmd, str) and len(cmd) < 32 else "error", exc)
            return
        self.errors = 0
        if isinstance(req, tp.TerminalReg):
            await self._reg(req)
        elif self.sn is None:
            await self.send(tp.encode_failure(tp.request_name(req), "send reg first"))
        elif req.sn != self.sn:
            await self.send(tp.encode_failure(tp.request_name(req), f"this connection is registered as {self.sn}"))
        else:
            await self.send(await self._handle(req))

    def _on_reply(self, obj: dict) -> None:
        if self.link is None:
            log.debug("terminal on %s: a reply before registration, ignored", self.conn.remote)
            return
        try:
            reply = tc.decode_reply(obj, self.link.awaited)
        except ProtocolError as exc:
            log.info("terminal %s: unreadable reply ignored: %s", self.sn, exc.message)
            return
        if not self.link.deliver(reply):
            log.info("terminal %s: reply to %s while no such command was waiting, ignored", self.sn, reply.name)

    async def _bad(self, ret: str, exc: ProtocolError) -> None:
        self.errors += 1
        await self.send(tp.encode_failure(ret, f"{exc.code}: {exc.message}"))
        if self.errors >= self.core.settings.devices.max_consecutive_errors:
            self.conn.request_close(CLOSE_BAD_MESSAGE, f"{self.errors} bad messages in a row")

    async def _handle(self, req: tp.TerminalRequest) -> str:
        try:
            return await self.terminals.handle(req, connector=CONNECTOR_WS, remote=self.conn.remote)
        except JournalUnavailable:
            return tp.encode_failure(tp.request_name(req), "the server cannot store records right now; send them again")

    async def _reg(self, req: tp.TerminalReg) -> None:
        if self.sn is not None and req.sn != self.sn:
            await self.send(tp.encode_failure("reg", f"this connection is registered as {self.sn}"))
            return
        await self.send(await self._handle(req))
        terminal = self.terminals.part.get(req.sn)
        if terminal is None or terminal["status"] == "rejected":
            self.conn.request_close(CLOSE_AUTH_FAILED, self.terminals.refusal(terminal, req.sn))
            return
        if self.link is None:
            self.sn = req.sn
            self.link = TerminalLink(self.core, req.sn, self._send_command, self.conn.request_close,
                                     self.conn.remote)
            previous = self.terminals.links.get(req.sn)
            self.terminals.links[req.sn] = self.link
            if previous is not None:
                previous.close(CLOSE_SUPERSEDED, "superseded by a newer connection")
            self._nursery.start_soon(self._serve_commands)
        else:
            self.link.want_backlog()
            self.commands.wake(req.sn)
        if terminal["status"] == "accepted":
            self.link.accepted()

    async def _serve_commands(self) -> None:
        try:
            await self.commands.serve(self.link)
        except LinkClosed:
            pass

"""Server -> terminal commands over a terminal's WebSocket (PROTOCOLS.md 3.2).

Terminal replies carry no id: they are matched by command name, so each terminal has exactly one
command in flight (`TerminalLink`'s lock). A command waits `terminals.command_timeout` for its
reply and is sent again, `terminals.command_tries` times in all, then fails. Commands asked for by
operators are durable: queued -> sent (each try) -> acknowledged | failed | expired, queued while
the terminal is offline and resumed (with the tries already spent) after a reconnect or restart.
After every registration the terminal's backlog is pulled with `getnewlog` pages until empty.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import trio

from . import command_codec as tc
from . import user_codec, users
from ... import secrets_ as sec
from ...errors import ProtocolError
from ...journal.record import parse_ts
from ...journal.writer import JournalUnavailable
from ...ops import OpError
from .push import command_lines as push_commands
from .service import CONNECTOR_PUSH, CONNECTOR_WS, protocol_of

log = logging.getLogger("gatewayd.terminals")

REDACTED = "***"
MAX_RESULT_CHARS = 64 * 1024   # a command result kept in the journal; bigger ones are summarised
MAX_USERS_KEPT = 1000          # users of a getuserlist result kept in the journal
MAX_WAIT = 600.0


class CommandTimeout(Exception):
    pass


class CommandRefused(Exception):
    """The terminal answered the first page of a paged command with result:false."""


class LinkClosed(Exception):
    """The terminal's connection ended; whatever was in flight stays open for the next one."""


class TerminalLink:
    """A registered terminal WebSocket as the command engine sees it. `send` raises LinkClosed once
    the connection is over."""

    def __init__(self, core, sn: str, send: Callable[[str], Awaitable[None]], close: Callable[[int, str], None],
                 remote: str = ""):
        self.core = core
        self.sn = sn
        self.remote = remote
        self._send = send
        self._close = close
        self.lock = trio.Lock()
        self._waiting: tuple[str, trio.MemorySendChannel] | None = None
        self._accepted = trio.Event()
        self.backlog_wanted = True  # after every reg

    def want_backlog(self) -> None:
        self.backlog_wanted = True

    def accepted(self) -> None:
        self._accepted.set()

    async def wait_accepted(self) -> None:
        await self._accepted.wait()  # set on approval; the wait ends with the connection otherwise

    def close(self, code: int, reason: str) -> None:
        self._close(code, reason)

    @property
    def awaited(self) -> str | None:
        """The reply name the command in flight waits for."""
        return self._waiting[0] if self._waiting is not None else None

    def deliver(self, reply: tc.TerminalReply) -> bool:
        """A reply from the terminal: True when it answers the command in flight."""
        if self._waiting is None or self._waiting[0] != reply.name:
            return False
        try:
            self._waiting[1].send_nowait(reply)
        except trio.WouldBlock:
            pass  # a second answer to the same try
        return True

    async def exchange(self, name: str, params: dict[str, Any] | None = None, *, first_try: int = 1,
                       on_try: Callable[[int], Awaitable[None]] | None = None) -> tc.TerminalReply | None:
        async with self.lock:
            return await self.exchange_locked(name, params, first_try=first_try, on_try=on_try)

    async def exchange_locked(self, name: str, params: dict[str, Any] | None = None, *, first_try: int = 1,
                              on_try: Callable[[int], Awaitable[None]] | None = None) -> tc.TerminalReply | None:
        """Send `name` and wait for the reply with the same name; retry on timeout. Hold `lock`."""
        frame = tc.encode_command(name, params)
        cfg = self.core.settings.terminals
        for attempt in range(first_try, cfg.command_tries + 1):
            if on_try is not None:
                await on_try(attempt)
            send, receive = trio.open_memory_channel[tc.TerminalReply](1)
            self._waiting = (tc.reply_name(name, params), send)
            try:
                await self._send(frame)
                if not tc.COMMANDS[name].expects_reply:
                    return None
                with trio.move_on_after(cfg.command_timeout):
                    return await receive.receive()
            finally:
                self._waiting = None
            log.info("terminal %s: no reply to %s within %g s (try %d of %d)", self.sn, name,
                     cfg.command_timeout, attempt, cfg.command_tries)
        raise CommandTimeout(f"no reply to {name} after {cfg.command_tries} tries")

    async def paged(self, name: str, params: dict[str, Any], on_page: Callable[[tc.TerminalReply], Awaitable[None]],
                    *, first_try: int = 1, on_try=None) -> int:
        """Run a paged command (`stn` true, then false ...) until `page_done`. Returns the page count."""
        cap = self.core.settings.terminals.page_cap
        pages = 0
        async with self.lock:
            while True:
                reply = await self.exchange_locked(name, {**params, "stn": pages == 0},
                                                   first_try=first_try if pages == 0 else 1,
                                                   on_try=on_try if pages == 0 else None)
                pages += 1
                await on_page(reply)
                if tc.page_done(reply, pages, cap):
                    return pages


def asked_window(command: dict[str, Any]) -> dict[str, str]:
    """The receive window a TX request asked for, carried to terminal.command_sent for comm_tx."""
    return {"window": command["window"]} if command.get("window") else {}


class TerminalCommands:
    def __init__(self, core):
        self.core = core
        self._wakeups: dict[str, trio.Event] = {}
        self._watchers: dict[str, tuple[trio.Event, dict[str, Any]]] = {}
        self._secret_params: dict[str, dict[str, Any]] = {}

    @property
    def part(self):
        return self.core.state.terminals

    # -- queueing -----------------------------------------------------------------------------------
    async def enqueue(self, sn: str, command: str, params: dict[str, Any] | None = None, *, source: str,
                      reference: str | None = None, confirm: bool = False, expires_in: float | None = None,
                      watch: bool = False, window: str | None = None,
                      confirm_destructive: bool = False) -> dict[str, Any]:
        terminal = self.part.get(sn)
        if terminal is None:
            raise OpError("not_found", f"no terminal with serial number {sn!r}", 404)
        if terminal["status"] != "accepted":
            raise OpError("conflict", f"terminal {sn} is {terminal['status']}; commands need an accepted terminal", 409)
        if not isinstance(command, str):
            raise OpError("invalid", "command must be a string", 422)
        command = command.strip().lower()
        checked = _checked_params(terminal, command, dict(params or {}))
        if not isinstance(confirm_destructive, bool):
            raise OpError("invalid", "confirm_destructive must be true or false", 422)
        if command in tc.DESTRUCTIVE and not confirm_destructive:
            raise OpError("unconfirmed", f"{command} erases data on terminal {sn}: send it again with "
                                         '"confirm_destructive": true to confirm', 422)
        if expires_in is None:
            expires_in = self.core.settings.devices.command_expiry
        if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or not 0 < expires_in <= 366 * 86400:
            raise OpError("invalid", "expires_in must be a number of seconds up to a year", 422)
        if reference is not None and (not isinstance(reference, str) or len(reference) > 128):
            raise OpError("invalid", "reference must be a string of at most 128 characters", 422)
        command_id = sec.new_id(8)
        journaled = _redacted_params(command, checked)
        if journaled != checked:
            self._secret_params[command_id] = checked
        expires = (datetime.now(timezone.utc) + timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if watch:  # before the publish: a live terminal may answer before the record is durable
            self._watchers[command_id] = (trio.Event(), {})
        try:
            await self.core.hub.publish("terminal.command_queued", {
                "command_id": command_id, "sn": sn, "command": command, "params": journaled, "source": source,
                "reference": reference, "confirm": bool(confirm), "expires": expires,
                **({"window": window} if window else {}),
                **({"confirmed_destructive": True} if command in tc.DESTRUCTIVE else {})})
        except BaseException:
            self._watchers.pop(command_id, None)
            raise
        self.wake(sn)
        return public_command(self.part.commands[command_id])

    def sendable_params(self, command: dict[str, Any]) -> dict[str, Any] | None:
        """The parameters to send (secrets included), None when a restart lost its secrets."""
        params = self._secret_params.get(command["command_id"], command["params"])
        return None if REDACTED in json.dumps(params) else params

    def wake(self, sn: str) -> None:
        event = self._wakeups.pop(sn, None)
        if event is not None:
            event.set()

    async def wait_settled(self, command_id: str, timeout: float) -> dict[str, Any] | None:
        """Wait (bounded) for a watched command to finish; its full result, or None if still open."""
        watcher = self._watchers.get(command_id)
        if watcher is None:
            return None
        try:
            with trio.move_on_after(timeout):
                await watcher[0].wait()
            return watcher[1] if watcher[0].is_set() else None
        finally:
            self._watchers.pop(command_id, None)

    async def expire_due(self) -> None:
        now = datetime.now(timezone.utc)
        for command in list(self.part.commands.values()):
            if command["state"] == "queued" and command["expires"] and parse_ts(command["expires"]) <= now:
                await self.finish(command, "terminal.command_expired", reason="expired before it could be sent")

    # -- running on a live link -----------------------------------------------------------------------
    async def serve(self, link: TerminalLink) -> None:
        """For one connection: pull the backlog, then send queued commands, until cancelled."""
        await link.wait_accepted()
        await self.core.service("terminals").mark_online(link.sn, CONNECTOR_WS, link.remote)
        while True:
            if link.backlog_wanted:
                link.backlog_wanted = False
                await self.pull_backlog(link)
                continue
            pending = self.part.open_commands(link.sn)
            if pending:
                await self.execute(link, pending[0])
                continue
            event = self._wakeups[link.sn] = trio.Event()
            await event.wait()  # set by enqueue or a new reg; the connection's end cancels this task

    async def pull_backlog(self, link: TerminalLink) -> dict[str, int]:
        attendance = self.core.service("attendance")
        totals = {"pages": 0, "received": 0, "stored": 0}

        async def store(reply: tc.TerminalReply) -> None:
            punches = tc.punches_in_reply(reply) if reply.result else []
            totals["received"] += len(punches)
            if punches:
                totals["stored"] += await attendance.ingest(link.sn, punches, connector=CONNECTOR_WS,
                                                            meta={"cmd": "getnewlog"})

        try:
            totals["pages"] = await link.paged("getnewlog", {}, store)
        except CommandTimeout as exc:
            log.warning("terminal %s: backlog pull stopped: %s", link.sn, exc)
            totals["error"] = str(exc)
        except (ProtocolError, JournalUnavailable) as exc:
            log.warning("terminal %s: backlog pull stopped: %s", link.sn, exc)
            totals["error"] = str(exc)
        await self.core.hub.publish("terminal.backlog_pulled", {"sn": link.sn, **totals}, durable=False)
        return totals

    async def execute(self, link: TerminalLink, command: dict[str, Any]) -> None:
        command_id, name = command["command_id"], command["command"]
        tries = self.core.settings.terminals.command_tries
        first_try = command["tries"] + 1
        if command["expires"] and parse_ts(command["expires"]) <= datetime.now(timezone.utc):
            await self.finish(command, "terminal.command_expired", reason="expired before it could be sent")
            return
        if first_try > tries:
            await self.finish(command, "terminal.command_failed", reason=f"no reply after {tries} tries")
            return
        params = self._secret_params.get(command_id, command["params"])
        if REDACTED in json.dumps(params):
            await self.finish(command, "terminal.command_failed",
                               reason="its secret parameters are not kept across a restart; queue it again")
            return

        async def on_try(attempt: int) -> None:
            await self.core.hub.publish("terminal.command_sent", {
                "command_id": command_id, "sn": link.sn, "command": name, "params": command["params"],
                "try": attempt, "reference": command["reference"], "confirm": command["confirm"],
                "connector": CONNECTOR_WS, **asked_window(command)}, durable=False)

        try:
            if _paged(name):
                full = await self._paged(link, name, params, first_try, on_try)
                reply = tc.TerminalReply(name, True, full)
            else:
                reply = await link.exchange(name, params, first_try=first_try, on_try=on_try)
        except CommandTimeout as exc:
            await self.finish(command, "terminal.command_failed", reason=str(exc))
            return
        except CommandRefused as exc:
            await self.finish(command, "terminal.command_failed", reason=_refusal(str(exc)))
            return
        except (ProtocolError, JournalUnavailable) as exc:
            await self.finish(command, "terminal.command_failed", reason=f"bad reply or storage error: {exc}")
            return
        except LinkClosed:
            raise
        except Exception:  # never let one command stop the terminal's queue for good
            log.exception("terminal %s: command %s (%s) failed", link.sn, command_id, name)
            await self.finish(command, "terminal.command_failed", reason="internal error; see the server log")
            return
        if reply is None:
            await self.finish(command, "terminal.command_acknowledged", result={"note": "no reply expected"})
        elif reply.result:
            await self.finish(command, "terminal.command_acknowledged", result=reply.fields)
        else:
            await self.finish(command, "terminal.command_failed", result=reply.fields,
                               reason=_refusal(reply.fields.get("reason")))

    async def _paged(self, link: TerminalLink, name: str, params: dict[str, Any], first_try: int, on_try) -> dict:
        if name == "getuserlist":
            return await self._user_listing(link, params, first_try, on_try)
        attendance = self.core.service("attendance")
        totals: dict[str, Any] = {"pages": 0, "received": 0, "stored": 0}

        async def page(reply: tc.TerminalReply) -> None:
            if not reply.result:
                if totals["pages"] == 0:
                    raise CommandRefused(str(reply.fields.get("reason") or ""))
                return
            totals["pages"] += 1
            punches = tc.punches_in_reply(reply)
            totals["received"] += len(punches)
            totals["stored"] += await attendance.ingest(link.sn, punches, connector=CONNECTOR_WS,
                                                        meta={"cmd": name})

        await link.paged(name, params, page, first_try=first_try, on_try=on_try)
        return totals

    async def _user_listing(self, link: TerminalLink, params: dict[str, Any], first_try: int = 1,
                            on_try=None) -> dict[str, Any]:
        """Run getuserlist page by page, then record the users on the terminal's user list."""
        rows: list[dict] = []
        pages: list[tc.TerminalReply] = []

        async def page(reply: tc.TerminalReply) -> None:
            if not reply.result:
                if not pages:
                    raise CommandRefused(str(reply.fields.get("reason") or ""))
                return
            pages.append(reply)
            rows.extend(user_codec.users_in_rows(reply.fields.get("record")))

        await link.paged("getuserlist", params, page, first_try=first_try, on_try=on_try)
        found = user_codec.merge_users(rows)
        complete = users.listing_complete(pages[-1] if pages else None)
        await users.record_listing(self.core, link.sn, found, complete)
        return {"pages": len(pages), "received": len(rows), "users": found, "complete": complete}

    async def finish(self, command: dict[str, Any], record_type: str, *, result: dict | None = None,
                     reason: str | None = None, connector: str | None = None) -> None:
        """Record a command's outcome (terminal.command_acknowledged / _failed / _expired)."""
        command_id = command["command_id"]
        if connector is None:
            connector = CONNECTOR_PUSH if protocol_of(self.part.get(command["sn"]) or {}) == "push" else CONNECTOR_WS
        data = {"command_id": command_id, "sn": command["sn"], "command": command["command"],
                "reference": command["reference"], "confirm": command["confirm"], "connector": connector}
        if result is not None:
            data["result"] = _journal_result(command["command"], result)
        if reason is not None:
            data["reason"] = reason
        await self.core.hub.publish(record_type, data)
        if record_type == "terminal.command_acknowledged" and connector != CONNECTOR_PUSH:
            changes = users.changes_from(command["command"], command["params"], result)
            if changes is not None:
                await self.core.hub.publish("terminal.users", {"sn": command["sn"], **changes})
        self._secret_params.pop(command_id, None)
        watcher = self._watchers.get(command_id)
        if watcher is not None:
            watcher[1].update(public_command(self.part.commands.get(command_id, {**command, **data})))
            if result is not None:
                watcher[1]["result"] = result
            watcher[0].set()

    # -- synchronous helpers -----------------------------------------------------------------------------
    def live_link(self, sn: str) -> TerminalLink:
        terminal = self.part.get(sn)
        if terminal is None:
            raise OpError("not_found", f"no terminal with serial number {sn!r}", 404)
        link = self.core.service("terminals").links.get(sn)
        if link is None or terminal["status"] != "accepted":
            raise OpError("offline", f"terminal {sn} is not connected over WebSocket", 409)
        return link

    async def list_users(self, sn: str) -> dict[str, Any]:
        """Run getuserlist on a live cmd/ret terminal; its users go to the terminal's user list."""
        link = self.live_link(sn)
        try:
            listing = await self._user_listing(link, {})
        except CommandRefused as exc:
            raise OpError("refused", f"terminal {sn} refused getuserlist: {exc}", 502) from None
        except CommandTimeout as exc:
            raise OpError("timeout", f"terminal {sn}: {exc}", 504) from None
        except LinkClosed:
            raise OpError("offline", f"terminal {sn} disconnected during getuserlist", 409) from None
        return {"sn": sn, **listing}


def _checked_params(terminal: dict[str, Any], command: str, params: dict[str, Any]) -> dict[str, Any]:
    """The command's validated parameters, by the rules of the terminal's protocol. A terminal that
    never called in is taken for cmd/ret unless the command exists for PUSH terminals only."""
    protocol = protocol_of(terminal)
    push_only = command in push_commands.COMMANDS and (command not in tc.COMMANDS
                                                       or (command == "raw" and "line" in params))
    if protocol == "push" or (protocol is None and push_only):
        try:
            return push_commands.check_command(command, params)
        except ProtocolError as exc:
            raise OpError("invalid", exc.message, 422) from None
    if _paged(command):
        params.pop("stn", None)  # the engine pages itself
    try:
        frame = tc.encode_command(command, {**params, "stn": True} if _paged(command) else params)
    except ProtocolError as exc:
        raise OpError("invalid", exc.message, 422) from None
    sent = json.loads(frame)
    if command == "raw":
        return sent  # the frame is the parameters, its own `cmd` included
    return {k: v for k, v in sent.items() if k not in ("cmd", "stn")}


def _refusal(reason: Any) -> str:
    return f"the terminal refused: {reason}" if reason else "the terminal answered result:false"


def _paged(command: str) -> bool:
    spec = tc.COMMANDS.get(command)
    return spec is not None and spec.paged


def _redacted_params(command: str, params: dict[str, Any]) -> dict[str, Any]:
    """A user's password never reaches the journal."""
    if command == "setuserinfo" and params.get("backupnum") == 10:
        return {**params, "record": REDACTED}
    return params


def _journal_result(command: str, result: dict[str, Any]) -> dict[str, Any]:
    out = dict(result)
    if command == "getuserlist" and isinstance(out.get("users"), list) and len(out["users"]) > MAX_USERS_KEPT:
        out["users"] = out["users"][:MAX_USERS_KEPT]
        out["truncated"] = True
    if command in ("getnewlog", "getalllog") and isinstance(out.get("record"), list):
        out["record"] = len(out["record"])
    if command == "getuserinfo" and str(out.get("backupnum", "")).strip() == "10" and "record" in out:
        out["record"] = REDACTED
    if len(json.dumps(out, default=str)) > MAX_RESULT_CHARS:
        out = {k: (f"<{len(v)} characters>" if isinstance(v, str) and len(v) > 256 else
                   f"<{len(v)} items>" if isinstance(v, list) else v) for k, v in out.items()}
    return out


def public_command(command: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in command.items() if k != "queued_seq"}

"""PUSH terminals: the handshake, uploads, command polls and command results (PROTOCOLS.md 9).

Identity and approval are the other terminals' (`TerminalService.admit`): an unknown serial number
turns pending and its punches are kept on disk (`TerminalService.hold`, within its caps) until an
operator decides; a rejected one gets 403.
Punches go through the one attendance store (`AttendanceService.ingest`), so `OK: <n>` is sent
only once they are durable, and a resent batch is stored once. The upload's stamp is recorded
after its punches, so a handshake never claims more than the journal holds.

Every method returns (HTTP status, text body) and never raises for bad input.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from .... import __version__
from ....journal.record import parse_ts
from ....journal.writer import JournalUnavailable
from .. import fields as tf
from .. import punches as tpunch
from ....errors import ProtocolError
from ..commands import asked_window
from ..service import CONNECTOR_PUSH
from . import codec, command_lines

log = logging.getLogger("gatewayd.terminals.push")

Reply = tuple[int, str]
USERS_PER_RECORD = 1000
IGNORED_TABLES = ("ATTPHOTO", "BIOPHOTO", "USERPIC", "ERRORLOG", "RTLOG", "RTSTATE")
UNAVAILABLE: Reply = (503, "the server cannot store records right now; send them again later")
_PASSWORD = re.compile(r"(?<=Passwd=)[^\t]*")


class PushService:
    def __init__(self, core):
        self.core = core

    @property
    def terminals(self):
        return self.core.service("terminals")

    @property
    def part(self):
        return self.core.state.push

    # -- admission ------------------------------------------------------------------------------------
    async def _admit(self, query: codec.PushQuery, remote: str) -> tuple[dict[str, Any] | None, Reply | None]:
        """(the terminal, None) when it may go on; (terminal or None, refusal) otherwise."""
        terminal = await self.terminals.admit(query.sn, CONNECTOR_PUSH, remote)
        if terminal is None or terminal["status"] == "rejected":
            status = 503 if terminal is None else 403
            return terminal, (status, self.terminals.refusal(terminal, query.sn))
        if terminal["status"] == "accepted":
            await self.terminals.mark_online(query.sn, CONNECTOR_PUSH, remote)
        return terminal, None

    def encoding(self, terminal: dict[str, Any]) -> str:
        return terminal.get("encoding") or self.core.settings.terminals.push_encoding

    # -- GET /iclock/cdata --------------------------------------------------------------------------------
    async def handshake(self, query: codec.PushQuery, remote: str) -> Reply:
        terminal, refused = await self._admit(query, remote)
        if refused:
            return refused
        devinfo = {key: value for key, value in (("pushver", query.pushver), ("language", query.language)) if value}
        await self.core.hub.publish("terminal.registered", {
            "sn": query.sn, "connector": CONNECTOR_PUSH, "remote": remote, "cpusn": None,
            "devinfo": {**terminal["devinfo"], **devinfo}, "status": terminal["status"]}, durable=False)
        return 200, codec.build_options(query.sn, self.part.stamps(query.sn), self.timezone_option(terminal),
                                        f"gatewayd {__version__}")

    def timezone_option(self, terminal: dict[str, Any]) -> str:
        name = terminal.get("tz") or self.core.settings.terminals.timezone
        try:
            tz = ZoneInfo(name)
        except (ValueError, KeyError, OSError):
            tz = ZoneInfo("UTC")
        return codec.timezone_value(tz, datetime.now(timezone.utc))

    # -- POST /iclock/cdata -------------------------------------------------------------------------------
    async def upload(self, query: codec.PushQuery, body: bytes, remote: str) -> Reply:
        terminal, refused = await self._admit(query, remote)
        if refused:
            return refused
        table = query.table or "ATTLOG"
        try:
            if table == "ATTLOG":
                return await self._attlog(query, terminal, body)
            if table in ("OPERLOG", "USERINFO", "BIODATA"):
                return await self._operlog(query, terminal, table, body)
            if table == "OPTIONS":
                return await self._options(query.sn, terminal, codec.parse_options(body, self.encoding(terminal)))
        except JournalUnavailable:
            return UNAVAILABLE
        # Photos and anything else: read (within the body limit) and not stored.
        self.core.metrics.inc("gatewayd_push_ignored_uploads_total",
                              table=table if table in IGNORED_TABLES else "other")  # a bounded label set
        return 200, codec.uploaded(len(codec.split_lines(body)) if table != "ATTPHOTO" else 1)

    async def _attlog(self, query: codec.PushQuery, terminal: dict[str, Any], body: bytes) -> Reply:
        upload = codec.parse_attlog(body)
        self._count_refused(query.sn, "ATTLOG", upload)
        if terminal["status"] == "pending":  # kept on disk, not journaled, until an operator decides
            refusal = await self.terminals.hold(query.sn, upload.punches)
            if refusal is not None:
                return 503, refusal
            if self.terminals.part.get(query.sn)["status"] == "pending":
                return 200, codec.uploaded(upload.accepted, upload)
        attendance = self.core.service("attendance")
        size = tpunch.MAX_RECORDS_PER_BATCH
        for start in range(0, len(upload.punches), size):
            await attendance.ingest(query.sn, upload.punches[start:start + size], connector=CONNECTOR_PUSH,
                                    meta={"cmd": "ATTLOG"})
        terminal = self.terminals.part.get(query.sn)  # an operator may have decided meanwhile
        if terminal is None or terminal["status"] == "rejected":
            return 403, self.terminals.refusal(terminal, query.sn)
        await self._stamp(query, "ATTLOG")
        return 200, codec.uploaded(upload.accepted, upload)

    async def _operlog(self, query: codec.PushQuery, terminal: dict[str, Any], table: str, body: bytes) -> Reply:
        upload = codec.parse_operlog(body, self.encoding(terminal))
        self._count_refused(query.sn, table, upload)
        if terminal["status"] == "accepted":
            users = [user.as_dict() for user in upload.users]
            await self.core.hub.publish_many([("push.users", {"sn": query.sn, "users": users[i:i + USERS_PER_RECORD]})
                                              for i in range(0, len(users), USERS_PER_RECORD)])
        if table == "OPERLOG" and terminal["status"] == "accepted":  # a pending one sends its users again later
            await self._stamp(query, "OPERLOG")
        return 200, codec.uploaded(upload.accepted, upload)

    async def _options(self, sn: str, terminal: dict[str, Any], info: dict[str, str]) -> Reply:
        if info and terminal["status"] == "accepted":
            await self.core.hub.publish_many([("push.info", {"sn": sn, "info": info}),
                                              ("terminal.info", {"sn": sn, "devinfo": codec.devinfo_from_options(info)})])
        return 200, "OK"

    async def _stamp(self, query: codec.PushQuery, table: str) -> None:
        """Record the upload's stamp once what it covers is durable. Not waited for: if it is lost,
        the terminal resends a batch that is stored already, and dedup answers it."""
        if query.stamp and self.part.stamps(query.sn).get(table) != query.stamp:
            await self.core.hub.publish("push.stamp", {"sn": query.sn, "table": table, "stamp": query.stamp},
                                        durable=False)

    def _count_refused(self, sn: str, table: str, rows: codec.Rows) -> None:
        if rows.bad:
            self.core.metrics.inc("gatewayd_push_refused_rows_total", rows.bad)
            log.warning("PUSH terminal %s: %d of %d %s rows refused; first: %s", sn, rows.bad, rows.rows, table,
                        tf.describe(str(rows.errors[0])))

    # -- GET /iclock/getrequest ----------------------------------------------------------------------------
    async def poll(self, query: codec.PushQuery, remote: str) -> Reply:
        terminal, refused = await self._admit(query, remote)
        if refused:
            return refused
        if terminal["status"] != "accepted":
            return 200, "OK"
        try:
            return 200, codec.build_commands(await self._due_commands(query.sn))
        except JournalUnavailable:
            return UNAVAILABLE

    async def poll_presence(self, query: codec.PushQuery, remote: str) -> Reply:
        """GET /iclock/ping: a sign of life while a terminal uploads a long backlog."""
        _, refused = await self._admit(query, remote)
        return refused or (200, "OK")

    async def _due_commands(self, sn: str) -> list[tuple[int, str]]:
        """Queued commands, and sent ones whose result is overdue (sent again until the tries run out)."""
        commands = self.core.service("terminal_commands")
        cfg = self.core.settings.terminals
        now = datetime.now(timezone.utc)
        due: list[tuple[int, str]] = []
        for command in self.terminals.part.open_commands(sn):
            if len(due) >= codec.MAX_COMMANDS_PER_POLL:
                break
            if command["state"] == "sent" and (now - parse_ts(command["updated"])).total_seconds() < cfg.command_timeout:
                continue
            if command["expires"] and parse_ts(command["expires"]) <= now and command["state"] == "queued":
                await commands.finish(command, "terminal.command_expired", reason="expired before it could be sent")
                continue
            if command["tries"] >= cfg.command_tries:
                await commands.finish(command, "terminal.command_failed",
                                      reason=f"no result after {cfg.command_tries} tries")
                continue
            params = commands.sendable_params(command)
            if params is None:
                await commands.finish(command, "terminal.command_failed",
                                      reason="its secret parameters are not kept across a restart; queue it again")
                continue
            try:
                command_lines.check_command(command["command"], params)
                line = command_lines.command_line(command["command"], params)
            except ProtocolError as exc:
                await commands.finish(command, "terminal.command_failed",
                                      reason=f"cannot be sent to a PUSH terminal: {exc.message}")
                continue
            await self.core.hub.publish("terminal.command_sent", {
                "command_id": command["command_id"], "sn": sn, "command": command["command"],
                "params": command["params"], "try": command["tries"] + 1, "reference": command["reference"],
                "confirm": command["confirm"], "connector": CONNECTOR_PUSH,
                "line": _PASSWORD.sub("***", line), **asked_window(command)}, durable=False)
            due.append((command["queued_seq"], line))
        return due

    # -- POST /iclock/devicecmd -----------------------------------------------------------------------------
    async def results(self, query: codec.PushQuery, body: bytes, remote: str) -> Reply:
        terminal, refused = await self._admit(query, remote)
        if refused:
            return refused
        results, rows = codec.parse_devicecmd(body, self.encoding(terminal))
        self._count_refused(query.sn, "devicecmd", rows)
        commands = self.core.service("terminal_commands")
        open_by_id = {str(c["queued_seq"]): c for c in self.terminals.part.open_commands(query.sn)}
        try:
            for result in results:
                command = open_by_id.pop(result.id, None)
                if command is None:
                    log.info("PUSH terminal %s: result for unknown or finished command %s", query.sn,
                             tf.describe(result.id))
                    continue
                outcome = {"return": result.code, "cmd": result.cmd}
                if result.info:
                    outcome["info"] = result.info
                    await self._options(query.sn, terminal, result.info)
                if result.ok and command["command"] == "deleteuser":
                    await self.core.hub.publish("push.users", {"sn": query.sn, "users": [],
                                                               "deleted": [command["params"]["enrollid"]]})
                if result.ok:
                    await commands.finish(command, "terminal.command_acknowledged", result=outcome,
                                          connector=CONNECTOR_PUSH)
                else:
                    await commands.finish(command, "terminal.command_failed", result=outcome,
                                          reason=f"the terminal answered {result.describe()}", connector=CONNECTOR_PUSH)
        except JournalUnavailable:
            return UNAVAILABLE
        return 200, "OK"

    # -- the access-control variant ------------------------------------------------------------------------
    async def registry(self, query: codec.PushQuery, body: bytes, remote: str) -> Reply:
        """POST /iclock/registry: device information in; a registry code out (derived from the SN:
        the terminal echoes it, it grants nothing)."""
        terminal, refused = await self._admit(query, remote)
        if refused:
            return refused
        try:
            await self._options(query.sn, terminal, codec.parse_options(body, self.encoding(terminal)))
        except JournalUnavailable:
            return UNAVAILABLE
        return 200, f"RegistryCode={hashlib.sha256(query.sn.encode()).hexdigest()[:10]}"

    def users(self, sn: str) -> list[dict[str, Any]]:
        """The users a PUSH terminal last reported (OPERLOG / USERINFO uploads)."""
        return list(self.part.get(sn)["users"].values())

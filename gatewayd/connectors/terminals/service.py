"""Attendance terminals: the registry (approve / reject / delete; the operations are in registry_ops.py),
the cmd/ret requests they make over HTTP and WebSocket alike (`reg`, `sendlog`, `checklive`,
`sendqrcode`, `senduser`), and their presence.

An unknown serial number turns "pending" (unless `terminals.auto_accept`): it is told
`result:false` with a reason, and the punches it sends are kept on disk within tight caps
(connectors/terminals/held.py); approving stores them, rejecting drops them. New unknown serial
numbers are limited per source address (`terminals.unknown_per_minute_per_source`) and in number
(`terminals.max_pending`). A terminal is online while requests keep
arriving within `presence.http_timeout` (or while its WebSocket is open); a sweeper task makes the
offline transition on time.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import trio

from . import codec as tp
from . import fields as tf
from . import punches as tpunch
from ...errors import ProtocolError
from ...journal.record import utc_now_iso
from ...journal.writer import JournalUnavailable
from ...ops import OpError, not_found
from ...ratelimit import KeyedBuckets, source_key
from . import access as door
from .attendance import zone
from .held import HeldPunches

log = logging.getLogger("gatewayd.terminals")

MAX_NAME_CHARS = 64
CONNECTOR_HTTP = "http"
CONNECTOR_WS = "terminal"
CONNECTOR_PUSH = "push"


def protocol_of(terminal: dict[str, Any]) -> str | None:
    """"push" (ZKTeco PUSH over /iclock), "cmd/ret" (HTTP or WebSocket JSON), None before first contact."""
    connector = terminal.get("connector")
    if connector == CONNECTOR_PUSH:
        return "push"
    return "cmd/ret" if connector else None


class TerminalService:
    def __init__(self, core):
        self.core = core
        self.last_heard: dict[str, float] = {}   # sn -> trio clock of its last HTTP request
        self.last_seen: dict[str, str] = {}      # sn -> wall-clock time of its last request
        self.links: dict[str, Any] = {}          # sn -> the live WebSocket link (transports/terminal_ws)
        self.held = HeldPunches(core.settings.state_path / "held",
                                lambda: (self.cfg.max_held_per_terminal, self.cfg.max_held_bytes))
        self.held.load()
        self._unknown = KeyedBuckets()            # per source address: new unknown serial numbers
        self._strange = KeyedBuckets()            # per source address: messages of unknown kinds recorded
        core.metrics.describe("gatewayd_terminals_unknown_messages_total",
                              "Terminal messages of a kind gatewayd does not know, answered result:false.")
        # sn -> (its clock minus ours in seconds, when read): from checklive's `time`, for clock alerts
        self.clock_readings: dict[str, tuple[float, str]] = {}
        # sn -> (trio clock, connector, remote) of the last request of a terminal that is not accepted,
        # so that approving one that has just called in shows it online at once
        self.heard_waiting: dict[str, tuple[float, str, str]] = {}

    @property
    def part(self):
        return self.core.state.terminals

    @property
    def cfg(self):
        return self.core.settings.terminals

    # -- presence ---------------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await self._settle_held()
        now = trio.current_time()
        stale = []
        for terminal in self.part.terminals.values():
            if terminal["online"] and terminal["connector"] == CONNECTOR_WS:
                stale.append(("terminal.offline", {"sn": terminal["sn"], "connector": CONNECTOR_WS,
                                                   "reason": "server restarted"}))
            elif terminal["online"]:
                self.last_heard[terminal["sn"]] = now  # an HTTP terminal gets a full timeout to call again
        if stale:
            await self.core.hub.publish_many(stale)
        task_status.started()
        commands = self.core.service("terminal_commands")
        while True:
            await trio.sleep(self.core.settings.presence.sweep_interval)
            await self.sweep()
            await commands.expire_due()

    async def sweep(self) -> None:
        """Offline transitions for terminals whose last request is older than presence.http_timeout."""
        now = trio.current_time()
        timeout = self.core.settings.presence.http_timeout
        for sn, heard in list(self.last_heard.items()):
            if now - heard < timeout:
                continue
            del self.last_heard[sn]
            terminal = self.part.get(sn)
            if sn in self.links or terminal is None or not terminal["online"]:
                continue
            await self.core.hub.publish("terminal.offline", {
                "sn": sn, "connector": terminal["connector"], "reason": f"no request for {timeout:g} s",
                "last_seen": self.last_seen.get(sn)}, durable=False)

    async def mark_online(self, sn: str, connector: str, remote: str) -> None:
        self.last_seen[sn] = utc_now_iso()
        if connector != CONNECTOR_WS:
            self.last_heard[sn] = trio.current_time()
        terminal = self.part.get(sn)
        if terminal is not None and (not terminal["online"] or terminal["connector"] != connector):
            await self.core.hub.publish("terminal.online", {"sn": sn, "connector": connector, "remote": remote},
                                        durable=False)

    async def mark_offline(self, sn: str, connector: str, reason: str) -> None:
        self.last_heard.pop(sn, None)
        terminal = self.part.get(sn)
        if terminal is not None and terminal["online"] and terminal["connector"] == connector:
            await self.core.hub.publish("terminal.offline", {"sn": sn, "connector": connector, "reason": reason,
                                                             "last_seen": self.last_seen.get(sn)}, durable=False)

    # -- admission ----------------------------------------------------------------------------------
    async def admit(self, sn: str, connector: str, remote: str) -> dict[str, Any] | None:
        """The terminal's registry entry, creating it (accepted or pending) on first contact.
        None when an unknown terminal cannot even be listed (too many pending already, or too many
        new serial numbers from this address)."""
        terminal = self.part.get(sn)
        if terminal is not None:
            if terminal["status"] != "accepted":
                self._heard_waiting(sn, connector, remote)
            return terminal
        if self.cfg.auto_accept:
            await self.core.hub.publish("terminal.added", {"sn": sn, "name": sn, "actor": "auto_accept",
                                                           "connector": connector, "remote": remote})
        else:
            pending = sum(1 for t in self.part.terminals.values() if t["status"] == "pending")
            if pending >= self.cfg.max_pending:
                self.core.metrics.inc("gatewayd_terminals_refused_total", reason="max_pending")
                return None
            per_minute = self.cfg.unknown_per_minute_per_source
            if not self._unknown.take(source_key(remote), trio.current_time(), per_minute / 60, per_minute):
                self.core.metrics.inc("gatewayd_terminals_refused_total", reason="unknown_rate")
                return None
            await self.core.hub.publish("terminal.pending", {"sn": sn, "connector": connector, "remote": remote})
            log.info("terminal %s (%s) is waiting for approval", sn, remote)
            self._heard_waiting(sn, connector, remote)
        return self.part.get(sn)

    def _heard_waiting(self, sn: str, connector: str, remote: str) -> None:
        self.heard_waiting[sn] = (trio.current_time(), connector, remote)
        self.last_seen[sn] = utc_now_iso()

    async def _online_at_approval(self, sn: str) -> None:
        """A terminal approved while connected, or within presence.http_timeout of its last request,
        is online from now on (an HTTP one until the timeout runs out from that request)."""
        heard = self.heard_waiting.pop(sn, None)
        link = self.links.get(sn)
        if link is not None:
            await self.mark_online(sn, CONNECTOR_WS, link.remote)
            return
        if heard is None or heard[1] == CONNECTOR_WS:
            return
        when, connector, remote = heard
        if trio.current_time() - when < self.core.settings.presence.http_timeout:
            seen = self.last_seen.get(sn)
            await self.mark_online(sn, connector, remote)
            self.last_heard[sn] = when
            if seen is not None:
                self.last_seen[sn] = seen

    async def hold(self, sn: str, punches: list[tpunch.Punch]) -> str | None:
        """Keep a pending terminal's punches on disk (within the caps). None once they are kept, or
        stored when an operator approved the terminal meanwhile; else why they could not be kept
        (the terminal must keep them and send them again)."""
        before = self.held.count(sn)
        kept, fitted = await self.held.keep(sn, punches)
        terminal = self.part.get(sn)
        if terminal is not None and terminal["status"] == "accepted":
            await self._release_held(sn)
            return None
        if kept > before:
            await self._held_changed(sn)
        if not fitted:
            self.core.metrics.inc("gatewayd_terminals_refused_total", reason="held_full")
            return f"{self.refusal(terminal, sn)}; {kept} records are kept and no more can be: keep the rest until then"
        return None

    async def _held_changed(self, sn: str) -> None:
        """`terminal.held` (not durable, no state): how many punches are kept for a pending terminal
        now, for the dashboard's counter. Only when the count grew, so a resent batch writes nothing."""
        try:
            await self.core.hub.publish("terminal.held", {"sn": sn, "held": self.held_count(sn)}, durable=False)
        except JournalUnavailable:
            pass  # the count is shown again at the next reload; the punches are kept either way

    def cloudtime(self, terminal: dict[str, Any] | None) -> str:
        style = (terminal or {}).get("cloudtime") or self.cfg.cloudtime
        tz_name = (terminal or {}).get("tz") or self.cfg.timezone
        return tp.format_cloudtime(datetime.now(timezone.utc), style, zone(tz_name) if style == "local" else None)

    @staticmethod
    def refusal(terminal: dict[str, Any] | None, sn: str) -> str:
        if terminal is None:
            return f"terminal {sn} is unknown and cannot wait for approval now (too many waiting); try later"
        if terminal["status"] == "rejected":
            return f"terminal {sn} was rejected by an operator"
        return f"terminal {sn} is waiting for an operator's approval"

    # -- requests (HTTP and WebSocket) ------------------------------------------------------------------
    async def handle(self, req: tp.TerminalRequest, *, connector: str, remote: str) -> str:
        """One decoded request -> the reply text. Raises JournalUnavailable (retryable)."""
        terminal = await self.admit(req.sn, connector, remote)
        accepted = terminal is not None and terminal["status"] == "accepted"
        if isinstance(req, tp.TerminalReg):
            return await self._reg(req, terminal, connector, remote)
        if isinstance(req, tp.SendLog):
            return await self._sendlog(req, terminal, connector, remote)
        if not accepted:
            return tp.encode_failure(tp.request_name(req), self.refusal(terminal, req.sn))
        if isinstance(req, tp.SendQrCode):
            await self.core.hub.publish("terminal.qrcode", {"sn": req.sn, "code": req.code, "connector": connector})
            await self.mark_online(req.sn, connector, remote)
            decision = await door.decide_for_code(self.core, terminal, req.code, connector)
            if decision is None:
                return tp.encode_reply("sendqrcode", True)
            user = self.core.state.terminal_users.get(req.sn)["users"].get(str(decision.enrollid)) or {}
            return tp.encode_reply("sendqrcode", True, access=decision.access, enrollid=decision.enrollid or None,
                                   username=user.get("name"), message=decision.message)
        if isinstance(req, tp.SendUser):
            await self.core.hub.publish("terminal.user_enrolled", {
                "sn": req.sn, "connector": connector, "user": req.as_user(), "backupnum": req.backupnum,
                "credential_chars": req.credential_chars})
            await self.mark_online(req.sn, connector, remote)
            return tp.encode_reply("senduser", True, cloudtime=self.cloudtime(terminal))
        await self.mark_online(req.sn, connector, remote)
        if req.time is not None:
            self.read_clock(req.sn, req.time)
        return tp.encode_reply("checklive", True, cloudtime=self.cloudtime(terminal))

    def read_clock(self, sn: str, local_time: str) -> None:
        """Remember how far a terminal's clock (local wall time in its zone) is from ours."""
        try:
            wall = tf.parse_local_time(local_time.strip(), "checklive.time")
            tz_name = self.core.service("attendance").zone_name_for(sn)
            skew = (wall.replace(tzinfo=zone(tz_name)) - datetime.now(timezone.utc)).total_seconds()
        except (ProtocolError, OpError, OverflowError):
            return
        self.clock_readings[sn] = (skew, utc_now_iso())

    async def _reg(self, req: tp.TerminalReg, terminal, connector: str, remote: str) -> str:
        if terminal is None:
            return tp.encode_failure("reg", self.refusal(terminal, req.sn))
        if terminal["status"] != "accepted" and terminal["registered"] and terminal["connector"] == connector \
                and terminal["cpusn"] == (req.cpusn or terminal["cpusn"]) and terminal["devinfo"] == (req.devinfo or {}):
            return tp.encode_failure("reg", self.refusal(terminal, req.sn))  # nothing new to record
        await self.core.hub.publish("terminal.registered", {
            "sn": req.sn, "connector": connector, "remote": remote, "cpusn": req.cpusn, "devinfo": req.devinfo,
            "status": terminal["status"]}, durable=False)
        if terminal["status"] != "accepted":
            return tp.encode_failure("reg", self.refusal(terminal, req.sn))
        await self.mark_online(req.sn, connector, remote)
        extra = {"nosenduser": not self.cfg.senduser} if connector == CONNECTOR_WS else {}
        return tp.encode_reply("reg", True, cloudtime=self.cloudtime(terminal), **extra)

    async def _sendlog(self, req: tp.SendLog, terminal, connector: str, remote: str) -> str:
        if terminal is None or terminal["status"] == "rejected":
            return tp.encode_failure("sendlog", self.refusal(terminal, req.sn))
        if terminal["status"] == "pending":
            refusal = await self.hold(req.sn, req.records)
            if refusal is not None:
                return tp.encode_failure("sendlog", refusal)
            if self.part.get(req.sn)["status"] == "pending":
                return tp.encode_failure("sendlog", f"{self.refusal(terminal, req.sn)}; "
                                                    f"{self.held.count(req.sn)} records are kept until then")
        meta = {"cmd": "sendlog", "logindex": req.logindex, "sent_count": req.count}
        await self.core.service("attendance").ingest(req.sn, req.records, connector=connector, meta=meta)
        terminal = self.part.get(req.sn)  # an operator may have decided meanwhile
        if terminal is None or terminal["status"] != "accepted":
            return tp.encode_failure("sendlog", self.refusal(terminal, req.sn))
        await self.mark_online(req.sn, connector, remote)
        decision = await door.decide_for_batch(self.core, terminal, req.records, connector)
        return tp.encode_reply("sendlog", True, count=req.count, logindex=req.logindex,
                               cloudtime=self.cloudtime(terminal),
                               access=None if decision is None else decision.access,
                               message=None if decision is None else decision.message)

    async def handle_http(self, body: bytes, remote: str) -> tuple[int, str]:
        """POST /api/device-http: (HTTP status, JSON body). Never raises for bad input."""
        try:
            obj = tf.loads_lenient(body, self.core.settings.server.max_body_bytes)
        except ProtocolError as exc:
            return (413 if exc.code == "too_large" else 400), _error_body(exc.code, exc.message)
        try:
            req = tp.decode_request(obj)
        except ProtocolError as exc:
            if exc.code == "unknown_cmd":
                return 200, await self.unknown_message(obj, exc, CONNECTOR_HTTP, remote)
            cmd = _identified_cmd(obj)
            if cmd is None:
                return 400, _error_body(exc.code, exc.message)
            return 200, tp.encode_failure(cmd, f"{exc.code}: {exc.message}")
        try:
            return 200, await self.handle(req, connector=CONNECTOR_HTTP, remote=remote)
        except JournalUnavailable:
            return 503, tp.encode_failure(tp.request_name(req),
                                          "the server cannot store records right now; send them again later")

    async def unknown_message(self, obj: dict, exc: ProtocolError, connector: str, remote: str) -> str:
        """A message of a kind gatewayd does not know: answered result:false with the reason (a
        terminal retries anything else forever), counted, and recorded for the actions stream
        (at most 5 a second per source address, so a flood costs the journal nothing)."""
        ret = unknown_ret(obj)
        self.core.metrics.inc("gatewayd_terminals_unknown_messages_total", connector=connector)
        if self._strange.take(source_key(remote), trio.current_time(), 5.0, 10):
            sn = obj.get("sn") if isinstance(obj.get("sn"), str) else ""
            try:
                await self.core.hub.publish("terminal.unknown_message", {
                    "sn": _printable_prefix(sn, tp.MAX_SN_CHARS), "cmd": ret, "reason": exc.message,
                    "connector": connector, "remote": remote}, durable=False)
            except JournalUnavailable:
                pass  # the answer matters more than the record of it
        return tp.encode_failure(ret, f"{exc.code}: {exc.message}")

    # -- registry operations --------------------------------------------------------------------------
    def held_count(self, sn: str) -> int:
        """Punches kept for a terminal that waits for approval (on disk; from older versions also
        in the journal)."""
        return self.core.state.attendance.held_count(sn) + self.held.count(sn)

    async def _release_held(self, sn: str) -> int:
        """Store the punches kept on disk for `sn` (now accepted), then remove them."""
        punches = await self.held.take(sn)
        if punches:
            terminal = self.part.get(sn) or {}
            await self.core.service("attendance").ingest(sn, punches, connector=terminal.get("connector") or CONNECTOR_HTTP,
                                                         meta={"cmd": "held"})
        await self.held.drop(sn)
        return len(punches)

    async def _settle_held(self) -> None:
        """At start: release what an approval did not get to, drop what no pending terminal owns."""
        for sn in self.held.terminals():
            terminal = self.part.get(sn)
            if terminal is not None and terminal["status"] == "accepted":
                released = await self._release_held(sn)
                log.info("terminal %s: %d held punches stored after its approval", sn, released)
            elif terminal is None or terminal["status"] != "pending":
                await self.held.drop(sn)

    def public(self, terminal: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in terminal.items()}
        sn = terminal["sn"]
        view["last_seen"] = self.last_seen.get(sn) or terminal["last_seen"]
        view["effective_tz"] = terminal["tz"] or self.cfg.timezone
        view["effective_cloudtime"] = terminal["cloudtime"] or self.cfg.cloudtime
        view["protocol"] = protocol_of(terminal)
        if view["protocol"] == "push":
            view["effective_encoding"] = terminal.get("encoding") or self.cfg.push_encoding
            push = self.core.state.push.get(sn)
            view["push"] = {"stamps": dict(push["stamps"]), "users": len(push["users"])}
        view["held_records"] = self.held_count(sn)
        view["websocket"] = sn in self.links
        return view

    def require(self, sn: Any) -> dict[str, Any]:
        sn = check_sn(sn)
        terminal = self.part.get(sn)
        if terminal is None:
            raise not_found("terminal", sn)
        return terminal

    async def approve(self, sn: str, actor: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        terminal = self.require(sn)
        if terminal["status"] == "accepted":
            raise OpError("conflict", f"terminal {sn} is already accepted", 409)
        held = self.held_count(sn)
        await self.core.hub.publish("terminal.approved", {"sn": sn, "actor": actor, "held": held,
                                                          "previous": terminal["status"], **(settings or {})})
        await self._release_held(sn)
        await self._online_at_approval(sn)
        link = self.links.get(sn)
        if link is not None:
            link.accepted()
        return self.public(self.part.get(sn))

    async def reject(self, sn: str, actor: str) -> dict[str, Any]:
        terminal = self.require(sn)
        if terminal["status"] == "rejected":
            raise OpError("conflict", f"terminal {sn} is already rejected", 409)
        dropped = self.held_count(sn)
        await self.core.hub.publish("terminal.rejected", {"sn": sn, "actor": actor, "dropped": dropped,
                                                          "previous": terminal["status"]})
        await self.held.drop(sn)
        self._disconnect(sn, "rejected by an operator")
        return self.public(self.part.get(sn))

    async def delete(self, sn: str, actor: str) -> dict[str, Any]:
        terminal = self.require(sn)
        dropped = self.held_count(sn)
        await self.core.hub.publish("terminal.deleted", {"sn": sn, "actor": actor, "dropped": dropped,
                                                         "name": terminal["name"]})
        await self.held.drop(sn)
        self._disconnect(sn, "deleted by an operator")
        self.last_heard.pop(sn, None)
        self.last_seen.pop(sn, None)
        self.heard_waiting.pop(sn, None)
        return {"sn": sn, "deleted": True, "held_dropped": dropped}

    def _disconnect(self, sn: str, reason: str) -> None:
        link = self.links.get(sn)
        if link is not None:
            link.close(4001, reason)


# -- argument checks --------------------------------------------------------------------------------
def check_sn(sn: Any) -> str:
    try:
        return tp.decode_request({"cmd": "checklive", "sn": sn}).sn
    except ProtocolError as exc:
        raise OpError("invalid", exc.message, 422) from None


def _identified_cmd(obj: dict) -> str | None:
    """The request's cmd when both it and the sn are usable (the error is then about the rest)."""
    cmd = obj.get("cmd")
    if not isinstance(cmd, str) or cmd.strip().lower() not in tp.REQUESTS:
        return None
    try:
        tp.decode_request({"cmd": "checklive", "sn": obj.get("sn")})
    except ProtocolError:
        return None
    return cmd.strip().lower()


def _printable_prefix(text: str, limit: int) -> str:
    return "".join(ch for ch in text[:limit] if " " <= ch <= "~")


def unknown_ret(obj: dict) -> str:
    """The name to answer an unknown message under: its own cmd, cut short and printable."""
    return _printable_prefix(str(obj.get("cmd", "")).strip().lower(), 32) or "error"


def _error_body(code: str, message: str) -> str:
    return json.dumps({"result": False, "code": code, "message": message}, separators=(",", ":"))

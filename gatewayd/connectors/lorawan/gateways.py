"""Packet forwarders: who may talk to us, where their downlinks go, and whether they are alive.

A gateway is known once a `gateway.added` record names it: an operator added it, or it was
accepted on first contact (lorawan.accept_unknown_gateways). Keep-alives (PULL_DATA) and `stat`
reports are journaled as `gateway.alive` (they are what `comm_gwalive` shows), coalesced: per
gateway at most one keep-alive and one stat record per `lorawan.keepalive_interval` (a gateway
coming online is always recorded), so spoofed datagrams cannot grow the journal; a gateway that
misses `missed_keepalives` keep-alive periods gets `gateway.offline`.

Downlink addresses are the source addresses of the last PULL_DATA: they live in memory only (a
gateway repeats its PULL_DATA every few seconds, also after we restart).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import trio

from ... import secrets_
from ...journal.writer import JournalUnavailable
from ...logs import RateLimitedLogger
from ...ops import OpError
from . import gwmp, frames as lorawan
from . import packets
from ...errors import ProtocolError
from ...ratelimit import TokenBucket

log = logging.getLogger("gatewayd.lorawan.gateways")

MAX_AUTO_GATEWAYS = 1000
AUTO_ADD_RATE = 1.0  # new unknown gateways accepted per second (burst below): a journal-flood guard
AUTO_ADD_BURST = 20
MAX_NAME = 64
MIN_TOKEN, MAX_TOKEN = 16, 512


@dataclass
class DownlinkPath:
    addr: tuple
    version: int
    seen: float  # trio clock
    link: Any = None  # a Station connection (None: a packet forwarder's address)


def normalize_eui(value: Any) -> str:
    try:
        return lorawan.eui_to_hex(lorawan.hex_to_eui(value))
    except ProtocolError:
        raise OpError("invalid", f"a gateway EUI is 16 hexadecimal digits, got {str(value)[:40]!r}", 422) from None


def _addr_text(addr: tuple) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Gateways:
    def __init__(self, core):
        self.core = core
        self.paths: dict[str, DownlinkPath] = {}
        self.heard: dict[str, float] = {}  # EUI -> trio clock of the last datagram
        self._bucket = TokenBucket(AUTO_ADD_RATE, AUTO_ADD_BURST, 0.0)
        self._rlog = RateLimitedLogger(log, 60.0)
        self._recorded: dict[tuple[str, str], float] = {}  # (EUI, "alive" | "stat") -> trio clock of its last record
        core.metrics.describe("gatewayd_lorawan_coalesced_total",
                              "Gateway keep-alives and stats not journaled (one per keep-alive period is).")

    @property
    def part(self):
        return self.core.state.lorawan

    @property
    def cfg(self):
        return self.core.settings.lorawan

    async def _publish(self, type_: str, data: dict[str, Any]) -> bool:
        try:
            await self.core.hub.publish(type_, data, durable=False)
            return True
        except (JournalUnavailable, trio.TooSlowError) as exc:
            self.core.metrics.inc("gatewayd_lorawan_dropped_total", reason="journal_unavailable")
            self._rlog.error("journal", "LoRaWAN gateway record not written: %s", exc)
            return False

    async def admit(self, eui: str, addr: tuple, version: int, announce: bool = True) -> bool:
        """True when `eui` may talk to us (accepting it on first contact if allowed)."""
        now = trio.current_time()
        gateway = self.part.gateways.get(eui)
        if gateway is None:
            if not self.cfg.accept_unknown_gateways:
                return self._refuse(eui, addr, "not registered (lorawan.accept_unknown_gateways is false)")
            auto = sum(1 for g in self.part.gateways.values() if g["source"] == "auto")
            if auto >= MAX_AUTO_GATEWAYS:
                return self._refuse(eui, addr, f"already {MAX_AUTO_GATEWAYS} gateways accepted automatically")
            if not self._bucket.take(now):
                return self._refuse(eui, addr, "too many new gateways at once")
            if not await self._publish("gateway.added", {"eui": eui, "name": "", "source": "auto",
                                                         "addr": _addr_text(addr)}):
                return False
            log.info("gateway %s accepted on first contact from %s", eui, _addr_text(addr))
            gateway = self.part.gateways.get(eui)
            if gateway is None:  # removed meanwhile
                return False
        self.heard[eui] = now
        if announce and not gateway["online"] and self._due(eui, "alive", True):
            await self._publish("gateway.alive", {"eui": eui, "kind": "contact", "addr": _addr_text(addr),
                                                  "version": version, "came_online": True})
        return True

    def _refuse(self, eui: str, addr: tuple, why: str) -> bool:
        self.core.metrics.inc("gatewayd_lorawan_dropped_total", reason="unknown_gateway")
        self._rlog.warning(f"refused:{addr[0]}", "gateway %s from %s refused: %s", eui, _addr_text(addr), why)
        return False

    async def keepalive(self, pull: gwmp.PullData, addr: tuple) -> None:
        """A PULL_DATA from an admitted gateway: remember where its downlinks go."""
        now = trio.current_time()
        self.paths[pull.gateway_eui] = DownlinkPath(addr, pull.version, now)
        gateway = self.part.gateways.get(pull.gateway_eui)
        came_online = gateway is not None and not gateway["online"]
        if not self._due(pull.gateway_eui, "alive", came_online):
            return
        await self._publish("gateway.alive", {"eui": pull.gateway_eui, "kind": "keepalive", "addr": _addr_text(addr),
                                              "version": pull.version, "came_online": came_online})

    async def stat(self, eui: str, stat: packets.GatewayStat, addr: tuple, version: int) -> None:
        fields = {k: (v[:40] if isinstance(v, str) else v) for k, v in asdict(stat).items() if v is not None}
        gateway = self.part.gateways.get(eui)
        came_online = gateway is not None and not gateway["online"]
        if not self._due(eui, "stat", came_online):
            return
        await self._publish("gateway.alive", {"eui": eui, "kind": "stat", "addr": _addr_text(addr),
                                              "version": version, "stat": fields, "came_online": came_online})

    def _due(self, eui: str, kind: str, came_online: bool) -> bool:
        """Whether a `gateway.alive` of `kind` may be journaled now: when the gateway comes online,
        else once per keep-alive period."""
        now = trio.current_time()
        last = self._recorded.get((eui, kind))
        if not came_online and last is not None and now - last < self.cfg.keepalive_interval:
            self.core.metrics.inc("gatewayd_lorawan_coalesced_total", kind=kind)
            return False
        if eui in self.part.gateways:  # bounded by the admitted gateways
            self._recorded[(eui, kind)] = now
        return True

    def connected(self, eui: str) -> bool:
        """A Station gateway with a live connection (alive without keep-alives)."""
        path = self.paths.get(eui)
        return path is not None and path.link is not None and path.link.alive

    def downlink_path(self, eui: str) -> DownlinkPath | None:
        path = self.paths.get(eui)
        if path is None:
            return None
        if path.link is not None:
            return path if path.link.alive else None
        gone_after = self.cfg.keepalive_interval * self.cfg.missed_keepalives
        if trio.current_time() - path.seen > gone_after:
            return None
        return path

    async def run_sweeper(self) -> None:
        """Marks gateways offline after `missed_keepalives` silent keep-alive periods."""
        started = trio.current_time()
        while True:
            period = min(max(self.cfg.keepalive_interval / 4, 0.1), 5.0)
            await trio.sleep(period)
            now = trio.current_time()
            limit = self.cfg.keepalive_interval * self.cfg.missed_keepalives
            for eui, gateway in list(self.part.gateways.items()):
                if gateway["online"] and now - self.heard.get(eui, started) > limit and not self.connected(eui):
                    self.paths.pop(eui, None)
                    await self._publish("gateway.offline", {"eui": eui, "last_seen": gateway["last_seen"],
                                                            "silent_seconds": round(now - self.heard.get(eui, started), 1)})

    # -- operator side --------------------------------------------------------------------------------
    async def add(self, eui: str, name: str, actor: str, token: str | None = None) -> dict[str, Any]:
        """Register a gateway; `token`: the bearer token a Station gateway must present (kept hashed)."""
        eui = normalize_eui(eui)
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise OpError("invalid", f"a gateway name is at most {MAX_NAME} characters", 422)
        data = {"eui": eui, "name": name.strip(), "source": "operator", "actor": actor}
        if token is not None:
            if not isinstance(token, str) or not MIN_TOKEN <= len(token) <= MAX_TOKEN \
                    or not all("!" <= c <= "~" for c in token):
                raise OpError("invalid", f"a gateway token is {MIN_TOKEN} to {MAX_TOKEN} printable ASCII characters "
                                         "without spaces", 422)
            data["token_hash"] = secrets_.hash_token(token)
        await self.core.hub.publish("gateway.added", data)
        return self.public(self.part.gateways[eui])

    def token_ok(self, gateway: dict[str, Any], token: str | None) -> bool:
        """True when the gateway needs no token or `token` is its token (constant time)."""
        stored = gateway.get("token_hash")
        if not stored:
            return True
        return token is not None and secrets_.check_token(token, stored)

    async def remove(self, eui: str, actor: str) -> dict[str, Any]:
        eui = normalize_eui(eui)
        gateway = self.part.gateways.get(eui)
        if gateway is None:
            raise OpError("not_found", f"no gateway with EUI {eui}", 404)
        shown = self.public(gateway)
        await self.core.hub.publish("gateway.removed", {"eui": eui, "actor": actor})
        self.paths.pop(eui, None)
        self.heard.pop(eui, None)
        self._recorded.pop((eui, "alive"), None)
        self._recorded.pop((eui, "stat"), None)
        return shown

    def public(self, gateway: dict[str, Any]) -> dict[str, Any]:
        out = dict(gateway)
        out["token"] = bool(out.pop("token_hash", None))
        out["connection"] = out.get("connection") or ""
        out["downlink_ready"] = self.downlink_path(gateway["eui"]) is not None
        return out

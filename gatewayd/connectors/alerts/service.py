"""The alert checker: observes the model (and the disk, and terminals' clocks) every
`alerts.check_interval`, lets the engine decide, and journals what it decided. Also the
operations behind the API, the dashboard and the command line (list, acknowledge)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable

import trio

from ...journal.writer import JournalUnavailable
from ...logs import RateLimitedLogger
from ...ops import OpError, not_found, operation
from .engine import ClockReading, DeviceSeen, GatewaySeen, Observations, TerminalSeen, Thresholds, evaluate

log = logging.getLogger("gatewayd.alerts")

STATES = ("active", "cleared", "all")
MAX_LIST = 1000


def disk_free_percent(path) -> float | None:
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    if not stats.f_blocks:
        return None
    return 100.0 * stats.f_bavail / stats.f_blocks


class AlertService:
    def __init__(self, core, clock: Callable[[], float] = time.time):
        self.core = core
        self.clock = clock
        self.started = clock()
        self._rlog = RateLimitedLogger(log, 60.0)
        self.checks = 0  # evaluations finished
        self._checked = trio.lowlevel.ParkingLot()

    @property
    def part(self):
        return self.core.state.alerts

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.started = self.clock()
        task_status.started()
        while True:
            await trio.sleep(self.core.settings.alerts.check_interval)
            try:
                await self.check()
            except (JournalUnavailable, trio.TooSlowError) as exc:
                self._rlog.error("journal", "alerts not journaled (retried at the next check): %s", exc)
            self.checks += 1
            self._checked.unpark_all()

    async def wait_checks(self, count: int) -> None:
        """Wait until `count` more evaluations have finished."""
        target = self.checks + count
        while self.checks < target:
            await self._checked.park()

    def observe(self, disk_free: float | None) -> Observations:
        state = self.core.state
        offline = self.part.device_offline
        devices = [DeviceSeen(d["id"], d["name"], tuple(d.get("tags") or ()), d["enabled"], d["online"],
                              None if d["online"] else offline.get(d["id"], d.get("last_seen")))
                   for d in state.devices.devices.values()]
        gateways = [GatewaySeen(g["eui"], g.get("name") or "", g.get("last_seen"))
                    for g in state.lorawan.gateways.values()]
        gone = self.part.terminal_offline
        terminals = [TerminalSeen(t["sn"], t.get("name") or t["sn"], t["status"] == "accepted", t["online"],
                                  None if t["online"] else gone.get(t["sn"], t.get("last_seen")))
                     for t in state.terminals.terminals.values()]
        readings = getattr(self.core.services.get("terminals"), "clock_readings", {})
        clocks = {sn: ClockReading(skew, seen) for sn, (skew, seen) in readings.items()}
        return Observations(now=self.clock(), started=self.started, devices=devices, gateways=gateways,
                            terminals=terminals, disk_subject=str(self.core.settings.state_path),
                            disk_free_percent=disk_free, clocks=clocks)

    async def check(self) -> list:
        """One evaluation: the records it wrote (durable when this returns)."""
        disk_free = None
        if self.core.settings.alerts.disk_free_below_percent > 0:
            disk_free = await trio.to_thread.run_sync(disk_free_percent, self.core.settings.state_path)
        # From here to the publish nothing awaits: the decision and the active set it changes are one step.
        records = evaluate(self.observe(disk_free), self.part.active,
                           Thresholds.from_settings(self.core.settings.alerts))
        if not records:
            return []
        for type_, data in records:
            log.log(logging.WARNING if type_ == "alert.raised" else logging.INFO, "%s: %s %s (%s)",
                    type_, data["kind"], data["subject"], data.get("reason") or data.get("rule"))
        return await self.core.hub.publish_many(records)

    # -- operator side --------------------------------------------------------------------------------
    def listing(self, state: str = "active", limit: int = 200) -> list[dict[str, Any]]:
        """Active alerts (newest first), then cleared ones (most recently cleared first)."""
        if state not in STATES:
            raise OpError("invalid", f"state must be one of {', '.join(STATES)}", 422)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIST:
            raise OpError("invalid", f"limit must be an integer from 1 to {MAX_LIST}", 422)
        items: list[dict[str, Any]] = []
        if state in ("active", "all"):
            items += sorted(self.part.active.values(), key=lambda a: a["raised_seq"], reverse=True)
        if state in ("cleared", "all"):
            items += reversed(self.part.cleared)
        return [public(a) for a in items[:limit]]

    async def acknowledge(self, alert_id: str, actor: str) -> dict[str, Any]:
        alert = self.part.find(alert_id) if isinstance(alert_id, str) else None
        if alert is None:
            raise not_found("alert", str(alert_id)[:40])
        if alert["acknowledged"] is None:
            await self.core.hub.publish("alert.acknowledged", {"id": alert_id, "kind": alert["kind"],
                                                               "subject": alert["subject"], "actor": actor})
        return public(self.part.find(alert_id))


def public(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert as the API shows it."""
    keys = ("id", "kind", "state", "subject", "name", "since", "raised", "cleared", "reason", "rule",
            "threshold", "details", "acknowledged")
    return {k: alert.get(k) for k in keys}


@operation("alert.list")
async def alert_list(core, state: str = "active", limit: int = 200) -> list[dict[str, Any]]:
    return core.service("alerts").listing(state, limit)


@operation("alert.ack")
async def alert_ack(core, alert_id: str, actor: str = "operator") -> dict[str, Any]:
    return await core.service("alerts").acknowledge(alert_id, actor)

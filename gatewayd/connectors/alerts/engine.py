"""Deciding alerts: what is observed now + the active alerts -> the records to write.

Pure: no clock, no I/O. The caller passes `now` (seconds since the epoch) and what it observed;
the result is a list of (record type, data) for `alert.raised` / `alert.cleared`, in the order
they must be applied.

An alert is identified by its key, `<kind>:<subject>`; at most one is active per key. An episode
starts when a condition begins (a device going offline, a gateway's last sign of life ...) and is
named by that start, `since`. An episode is raised at most once: an active alert whose episode
ended (even if a new one began between two checks) is cleared first, and the new episode is raised
only once it reaches its own threshold.

Time while gatewayd was stopped does not count towards an offline or silence threshold: every
device, terminal and gateway gets a full threshold after a start (`started`) to come back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

DEVICE_OFFLINE = "device_offline"
GATEWAY_SILENT = "gateway_silent"
TERMINAL_OFFLINE = "terminal_offline"
DISK_LOW = "disk_low"
CLOCK_SKEW = "clock_skew"
KINDS = (DEVICE_OFFLINE, GATEWAY_SILENT, TERMINAL_OFFLINE, DISK_LOW, CLOCK_SKEW)

DISK_CLEAR_MARGIN = 1.0  # percentage points above the threshold before a disk alert clears


@dataclass(frozen=True)
class DeviceSeen:
    id: str
    name: str
    tags: tuple[str, ...]
    enabled: bool
    online: bool
    offline_since: str | None  # journal time it went offline (None: never seen)


@dataclass(frozen=True)
class GatewaySeen:
    eui: str
    name: str
    last_seen: str | None


@dataclass(frozen=True)
class TerminalSeen:
    sn: str
    name: str
    accepted: bool
    online: bool
    offline_since: str | None


@dataclass(frozen=True)
class ClockReading:
    skew_seconds: float  # terminal clock minus server clock
    observed: str  # journal-style UTC time of the reading


@dataclass
class Observations:
    now: float
    started: float
    devices: Iterable[DeviceSeen] = ()
    gateways: Iterable[GatewaySeen] = ()
    terminals: Iterable[TerminalSeen] = ()
    disk_subject: str = "state_dir"
    disk_free_percent: float | None = None  # None: not measured
    clocks: Mapping[str, ClockReading] = field(default_factory=dict)  # terminal sn -> last reading


@dataclass(frozen=True)
class Thresholds:
    device_offline_after: float = 300.0
    gateway_silent_after: float = 120.0
    terminal_offline_after: float = 600.0
    disk_free_below_percent: float = 10.0
    terminal_clock_skew_seconds: float = 120.0
    rules: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_settings(cls, alerts) -> "Thresholds":
        return cls(alerts.device_offline_after, alerts.gateway_silent_after, alerts.terminal_offline_after,
                   alerts.disk_free_below_percent, alerts.terminal_clock_skew_seconds, tuple(alerts.rules))

    def device_rule(self, device: DeviceSeen) -> tuple[float, str]:
        """(seconds, where it comes from) for one device: its own rule, else the first tag rule."""
        tagged = None
        for rule in self.rules:
            if rule.get("device") == device.id:
                return float(rule["device_offline_after"]), f"device:{device.id}"
            if tagged is None and rule.get("tag") in device.tags:
                tagged = float(rule["device_offline_after"]), f"tag:{rule['tag']}"
        return tagged or (self.device_offline_after, "alerts.device_offline_after")


@dataclass(frozen=True)
class Condition:
    """One subject's state for one kind. `firing` None means unknown: leave any alert as it is."""
    kind: str
    subject: str
    name: str
    since: str | None
    firing: bool | None
    rule: str = ""
    threshold: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)
    resolution: str = ""  # why it is not firing (the clear reason)
    # Still inside the episode that began at `since`, though not past the threshold (counted from
    # the start): an alert already raised for this episode stays.
    continues: bool = False

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.subject)


def alert_key(kind: str, subject: str) -> str:
    return f"{kind}:{subject}"


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alert_id(key: str, since: str | None, now: float) -> str:
    return hashlib.blake2s(f"{key}|{since}|{now!r}".encode(), digest_size=6).hexdigest()


def _elapsed(since: str, obs: Observations) -> float:
    return obs.now - max(epoch(since), obs.started)


def _absence(kind: str, subject: str, name: str, since: str | None, present: bool, threshold: float,
             rule: str, obs: Observations, back: str) -> Condition:
    if threshold <= 0:
        return Condition(kind, subject, name, since, False, rule, threshold, resolution=f"{rule} is 0 (off)")
    if present or since is None:
        return Condition(kind, subject, name, since, False, rule, threshold, resolution=back)
    # Before the threshold only an alert of an earlier episode (one that ended when the subject
    # came back in between) is cleared; one of this episode stays (`continues`).
    return Condition(kind, subject, name, since, _elapsed(since, obs) >= threshold, rule, threshold,
                     resolution=back, continues=True)


def conditions(obs: Observations, limits: Thresholds) -> list[Condition]:
    """Every subject's condition, from what was observed."""
    found: list[Condition] = []
    for device in obs.devices:
        threshold, rule = limits.device_rule(device)
        if not device.enabled:
            found.append(Condition(DEVICE_OFFLINE, device.id, device.name, device.offline_since, False, rule,
                                   threshold, resolution="device disabled"))
            continue
        found.append(_absence(DEVICE_OFFLINE, device.id, device.name, device.offline_since, device.online,
                              threshold, rule, obs, "back online"))
    for gateway in obs.gateways:
        found.append(_absence(GATEWAY_SILENT, gateway.eui, gateway.name, gateway.last_seen, False,
                              limits.gateway_silent_after, "alerts.gateway_silent_after", obs, "heard again"))
    for terminal in obs.terminals:
        rule = "alerts.terminal_offline_after"
        if not terminal.accepted:
            found.append(Condition(TERMINAL_OFFLINE, terminal.sn, terminal.name, terminal.offline_since, False,
                                   rule, limits.terminal_offline_after, resolution="terminal not accepted"))
            continue
        found.append(_absence(TERMINAL_OFFLINE, terminal.sn, terminal.name, terminal.offline_since,
                              terminal.online, limits.terminal_offline_after, rule, obs, "back online"))
        reading = obs.clocks.get(terminal.sn)
        skew_limit = limits.terminal_clock_skew_seconds
        rule = "alerts.terminal_clock_skew_seconds"
        if skew_limit <= 0:
            found.append(Condition(CLOCK_SKEW, terminal.sn, terminal.name, None, False, rule, skew_limit,
                                   resolution=f"{rule} is 0 (off)"))
        elif reading is not None:
            skewed = abs(reading.skew_seconds) > skew_limit
            found.append(Condition(CLOCK_SKEW, terminal.sn, terminal.name, reading.observed if skewed else None,
                                   skewed, rule, skew_limit, {"skew_seconds": round(reading.skew_seconds, 1)},
                                   resolution="clock within the limit"))
        else:
            found.append(Condition(CLOCK_SKEW, terminal.sn, terminal.name, None, None))
    found.append(_disk(obs, limits))
    return found


def _disk(obs: Observations, limits: Thresholds) -> Condition:
    rule = "alerts.disk_free_below_percent"
    threshold = limits.disk_free_below_percent
    free = obs.disk_free_percent
    if threshold <= 0:
        return Condition(DISK_LOW, obs.disk_subject, obs.disk_subject, None, False, rule, threshold,
                         resolution=f"{rule} is 0 (off)")
    if free is None:
        return Condition(DISK_LOW, obs.disk_subject, obs.disk_subject, None, None)
    details = {"free_percent": round(free, 2)}
    if free < threshold:
        return Condition(DISK_LOW, obs.disk_subject, obs.disk_subject, iso(obs.now), True, rule, threshold, details)
    if free < threshold + DISK_CLEAR_MARGIN:
        return Condition(DISK_LOW, obs.disk_subject, obs.disk_subject, None, None)
    return Condition(DISK_LOW, obs.disk_subject, obs.disk_subject, None, False, rule, threshold, details,
                     resolution="free space back above the threshold")


# Kinds whose `since` is the observation time: a still-firing condition continues its episode.
_ONGOING = {DISK_LOW, CLOCK_SKEW}


def evaluate(obs: Observations, active: Mapping[str, Mapping[str, Any]],
             limits: Thresholds) -> list[tuple[str, dict[str, Any]]]:
    """The records that bring the active set in line with the conditions (clears before raises)."""
    cleared: list[tuple[str, dict[str, Any]]] = []
    raised: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for cond in conditions(obs, limits):
        key = cond.key
        seen.add(key)
        current = active.get(key)
        if cond.firing is None:
            continue
        if current is not None:
            same_episode = (cond.firing and cond.kind in _ONGOING) or \
                ((cond.firing or cond.continues) and current.get("since") == cond.since)
            if same_episode:
                continue
            reason = cond.resolution if not cond.firing else "ended and began again"
            cleared.append(("alert.cleared", _clear_data(current, reason)))
        if cond.firing:
            raised.append(("alert.raised", {
                "id": alert_id(key, cond.since, obs.now), "kind": cond.kind, "subject": cond.subject,
                "name": cond.name, "since": cond.since, "rule": cond.rule, "threshold": cond.threshold,
                "details": dict(cond.details)}))
    for key, current in active.items():
        if key not in seen and current.get("kind") != DISK_LOW:
            cleared.append(("alert.cleared", _clear_data(current, "subject removed")))
    return cleared + raised


def _clear_data(alert: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"id": alert["id"], "kind": alert["kind"], "subject": alert["subject"], "name": alert.get("name", ""),
            "since": alert.get("since"), "reason": reason}

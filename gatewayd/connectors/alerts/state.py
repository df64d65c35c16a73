"""Alerts in the model: the active set, the recently cleared ones, and since when each device and
terminal has been offline (the start of an offline episode).

Record types applied here:
- alert.raised | alert.cleared | alert.acknowledged
- device.offline | device.online | device.deleted, terminal.offline | terminal.online | terminal.deleted
  (only to remember when an offline episode began)

Replay rebuilds the active set exactly: an alert raised and not cleared before a restart is still
active after it, so it is neither lost nor raised again.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ...journal.record import Record
from .engine import alert_key

CLEARED_KEPT = 500


class AlertsState:
    name = "alerts"

    def __init__(self) -> None:
        self.active: dict[str, dict[str, Any]] = {}  # key "<kind>:<subject>" -> alert
        self.cleared: deque[dict[str, Any]] = deque(maxlen=CLEARED_KEPT)  # oldest first
        self.device_offline: dict[str, str] = {}  # device id -> journal time it went offline
        self.terminal_offline: dict[str, str] = {}  # terminal sn -> journal time it went offline

    def appliers(self):
        return {
            "alert.raised": self._raised,
            "alert.cleared": self._cleared,
            "alert.acknowledged": self._acknowledged,
            "device.offline": self._device_offline,
            "device.online": self._device_back,
            "device.deleted": self._device_back,
            "terminal.offline": self._terminal_offline,
            "terminal.online": self._terminal_back,
            "terminal.deleted": self._terminal_back,
        }

    def find(self, alert_id: str) -> dict[str, Any] | None:
        for alert in self.active.values():
            if alert["id"] == alert_id:
                return alert
        for alert in reversed(self.cleared):
            if alert["id"] == alert_id:
                return alert
        return None

    def _raised(self, record: Record) -> None:
        data = record.data
        key = alert_key(data["kind"], data["subject"])
        if key in self.active:
            return  # one active alert per subject and kind, whatever a record says
        self.active[key] = {**data, "state": "raised", "raised": record.ts, "raised_seq": record.seq,
                            "cleared": None, "reason": None, "acknowledged": None}

    def _cleared(self, record: Record) -> None:
        data = record.data
        key = alert_key(data["kind"], data["subject"])
        alert = self.active.get(key)
        if alert is None or alert["id"] != data["id"]:
            return
        del self.active[key]
        alert.update(state="cleared", cleared=record.ts, reason=data.get("reason"))
        self.cleared.append(alert)

    def _acknowledged(self, record: Record) -> None:
        alert = self.find(record.data["id"])
        if alert is not None and alert["acknowledged"] is None:
            alert["acknowledged"] = {"by": record.data.get("actor"), "at": record.ts}

    def _device_offline(self, record: Record) -> None:
        self.device_offline.setdefault(record.data["device_id"], record.ts)

    def _device_back(self, record: Record) -> None:
        self.device_offline.pop(record.data["device_id"], None)

    def _terminal_offline(self, record: Record) -> None:
        self.terminal_offline.setdefault(record.data["sn"], record.ts)

    def _terminal_back(self, record: Record) -> None:
        self.terminal_offline.pop(record.data["sn"], None)

    def snapshot(self) -> dict[str, Any]:
        return {"active": self.active, "cleared": list(self.cleared), "device_offline": self.device_offline,
                "terminal_offline": self.terminal_offline}

    def restore(self, data: dict[str, Any]) -> None:
        self.active = data.get("active", {})
        self.cleared = deque(data.get("cleared", []), maxlen=CLEARED_KEPT)
        self.device_offline = data.get("device_offline", {})
        self.terminal_offline = data.get("terminal_offline", {})

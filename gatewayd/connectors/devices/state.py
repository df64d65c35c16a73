"""Devices: the registry, presence flags, the latest telemetry values, and the recent-events list.

Record types applied here:
- registry: device.created|updated|deleted|enabled|disabled|token_rotated
- presence: device.connected|disconnected|online|offline
- values:   device.telemetry|event (last seen, the latest value per key, recent events)

Appliers are pure: timestamps come from the record (`record.ts`), never from a clock. Telemetry
history lives in the history store (gatewayd/history); the model keeps the latest value per key and
`events_limit` entries in the recent-events list.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ...journal.record import Record

PRESENCE_EVENTS = {
    "device.connected": "device_connected",
    "device.disconnected": "device_disconnected",
    "device.online": "device_online",
    "device.offline": "device_offline",
}


class DevicesState:
    name = "devices"
    events_limit = 1000

    def __init__(self) -> None:
        self.devices: dict[str, dict[str, Any]] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.events: deque = deque(maxlen=self.events_limit)
        # Telemetry an earlier version kept in the snapshot: handed to the history store once, at start.
        self.legacy_telemetry: dict[str, list] | None = None

    def get(self, device_id: str) -> dict[str, Any] | None:
        return self.devices.get(device_id) if isinstance(device_id, str) else None

    def appliers(self):
        return {
            "device.created": self._created,
            "device.updated": self._updated,
            "device.deleted": self._deleted,
            "device.enabled": self._enabled,
            "device.disabled": self._disabled,
            "device.token_rotated": self._token_rotated,
            "device.connected": self._presence,
            "device.disconnected": self._presence,
            "device.online": self._presence,
            "device.offline": self._presence,
            "device.telemetry": self._telemetry,
            "device.event": self._event,
        }

    # -- registry -----------------------------------------------------------------------------------
    def _created(self, record: Record) -> None:
        data = record.data
        device = {
            "id": data["device_id"],
            "name": data["name"],
            "kind": data.get("kind", "ws"),
            "tags": list(data.get("tags") or []),
            "enabled": True,
            "created": record.ts,
            "updated": record.ts,
            "token_hash": data.get("token_hash"),
            "token_rotated": None,
            "last_seen": None,
            "online": False,
            "connector": None,
        }
        if data.get("lorawan") is not None:
            device["lorawan"] = data["lorawan"]
        self.devices[device["id"]] = device

    def _updated(self, record: Record) -> None:
        device = self.devices.get(record.data["device_id"])
        if device is None:
            return
        for key in ("name", "tags"):
            if key in record.data.get("changes", {}):
                device[key] = record.data["changes"][key]
        device["updated"] = record.ts

    def _deleted(self, record: Record) -> None:
        device_id = record.data["device_id"]
        self.devices.pop(device_id, None)
        self.latest.pop(device_id, None)

    def _enabled(self, record: Record) -> None:
        self._set(record, enabled=True)

    def _disabled(self, record: Record) -> None:
        self._set(record, enabled=False)

    def _token_rotated(self, record: Record) -> None:
        self._set(record, token_hash=record.data["token_hash"], token_rotated=record.ts)

    def _set(self, record: Record, **values: Any) -> None:
        device = self.devices.get(record.data["device_id"])
        if device is not None:
            device.update(values)
            device["updated"] = record.ts

    # -- presence -----------------------------------------------------------------------------------
    def _presence(self, record: Record) -> None:
        data = record.data
        device = self.devices.get(data["device_id"])
        if device is None:
            return
        if record.type == "device.online":
            device["online"] = True
            device["connector"] = data.get("connector")
        elif record.type == "device.offline":
            device["online"] = False
        seen = data.get("last_seen") or (record.ts if record.type == "device.connected" else None)
        if seen and (device["last_seen"] is None or seen > device["last_seen"]):
            device["last_seen"] = seen
        entry = {"seq": record.seq, "ts": record.ts, "type": PRESENCE_EVENTS[record.type],
                 "device_id": device["id"], "name": device["name"], "connector": data.get("connector")}
        for key in ("reason", "code", "remote"):
            if data.get(key) is not None:
                entry[key] = data[key]
        self.events.append(entry)

    # -- values ---------------------------------------------------------------------------------------
    def _seen(self, device: dict[str, Any], record: Record) -> None:
        device["last_seen"] = record.ts

    def _telemetry(self, record: Record) -> None:
        data = record.data
        device = self.devices.get(data["device_id"])
        if device is None:
            return
        self._seen(device, record)
        latest = self.latest.setdefault(device["id"], {})
        for key, value in data["payload"].items():
            latest[key] = {"value": value, "ts": record.ts}

    def _event(self, record: Record) -> None:
        data = record.data
        device = self.devices.get(data["device_id"])
        if device is None:
            return
        self._seen(device, record)
        entry = {"seq": record.seq, "ts": record.ts, "type": "device_event", "device_id": device["id"],
                 "name": device["name"], "event": data["event"], "payload": data.get("payload", {}),
                 "connector": data.get("connector")}
        if data.get("device_ts") is not None:
            entry["device_ts"] = data["device_ts"]
        self.events.append(entry)

    # -- snapshot -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "latest": self.latest,
            "events": list(self.events),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.devices = data.get("devices", {})
        self.legacy_telemetry = data.get("telemetry") or None
        self.latest = data.get("latest", {})
        self.events = deque(data.get("events", []), maxlen=self.events_limit)

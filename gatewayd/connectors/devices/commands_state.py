"""Durable commands to WebSocket devices: queued -> sent (once per attempt) -> acknowledged | failed |
expired.

Record types: command.queued|sent|acknowledged|failed|expired; device.deleted drops the device's
commands. Each device keeps its commands in queue order; finished ones beyond `finished_limit`
per device are forgotten (oldest first) so the model stays bounded. A finished command is final:
a later record for it changes nothing but the `sent` stamp and the attempt count.
"""

from __future__ import annotations

from typing import Any

from ...journal.record import Record

FINISHED = ("acknowledged", "failed", "expired")
_STATE_OF = {"command.sent": "sent", "command.acknowledged": "acknowledged",
             "command.failed": "failed", "command.expired": "expired"}


class CommandsState:
    name = "commands"
    finished_limit = 200

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_device: dict[str, list[str]] = {}
        self.queued: dict[str, dict[str, Any]] = {}  # command id -> command, queue order
        self.sent: dict[str, dict[str, Any]] = {}  # command id -> command sent and not answered yet

    def get(self, command_id: str) -> dict[str, Any] | None:
        return self.by_id.get(command_id) if isinstance(command_id, str) else None

    def for_device(self, device_id: str) -> list[dict[str, Any]]:
        return [self.by_id[c] for c in self.by_device.get(device_id, ())]

    def pending(self, device_id: str) -> list[dict[str, Any]]:
        """The device's queued commands, oldest first."""
        return [c for c in self.for_device(device_id) if c["state"] == "queued"]

    def to_send(self, device_id: str, session: str) -> dict[str, Any] | None:
        """The next command for `session`, in queue order: a queued one, or one sent on an earlier
        session that ended before the device answered (it may never have read it)."""
        for command_id in self.by_device.get(device_id, ()):
            command = self.by_id[command_id]
            if command["state"] == "queued" or (command["state"] == "sent" and command.get("session") != session):
                return command
        return None

    def appliers(self):
        handlers = {"command.queued": self._queued, "device.deleted": self._device_deleted}
        handlers.update({record_type: self._transition for record_type in _STATE_OF})
        return handlers

    def _queued(self, record: Record) -> None:
        data = record.data
        command = {
            "id": data["command_id"],
            "device_id": data["device_id"],
            "command": data["command"],
            "payload": data.get("payload", {}),
            "state": "queued",
            "source": data.get("source"),
            "reference": data.get("reference"),
            "confirm": bool(data.get("confirm")),
            "window": data.get("window"),
            "queued": record.ts,
            "expires_at": data.get("expires_at"),
            "attempts": 0,
            "max_attempts": data.get("max_attempts"),
            "sent": None,
            "acknowledged": None,
            "failed": None,
            "expired": None,
            "result": None,
            "error": None,
        }
        self.by_id[command["id"]] = command
        self.by_device.setdefault(command["device_id"], []).append(command["id"])
        self.queued[command["id"]] = command

    def _transition(self, record: Record) -> None:
        command = self.by_id.get(record.data["command_id"])
        if command is None:
            return
        state = _STATE_OF[record.type]
        if state == "sent":
            command["sent"] = record.ts
            command["attempts"] = record.data.get("attempt", command.get("attempts", 0) + 1)
        if command["state"] in FINISHED:
            return  # e.g. the device's result overtook the sent record: states only move forward
        if state != "sent":
            command[state] = record.ts
        command["state"] = state
        if "result" in record.data:
            command["result"] = record.data["result"]
        if "error" in record.data:
            command["error"] = record.data["error"]
        if "session" in record.data:
            command["session"] = record.data["session"]
        self.queued.pop(command["id"], None)
        if state == "sent":
            self.sent[command["id"]] = command
        else:
            self.sent.pop(command["id"], None)
            self._trim(command["device_id"])

    def _trim(self, device_id: str) -> None:
        ids = self.by_device.get(device_id, [])
        finished = [c for c in ids if self.by_id[c]["state"] in FINISHED]
        excess = len(finished) - self.finished_limit
        if excess > 0:
            drop = set(finished[:excess])
            self.by_device[device_id] = [c for c in ids if c not in drop]
            for command_id in drop:
                del self.by_id[command_id]

    def _device_deleted(self, record: Record) -> None:
        for command_id in self.by_device.pop(record.data["device_id"], []):
            self.by_id.pop(command_id, None)
            self.queued.pop(command_id, None)
            self.sent.pop(command_id, None)

    def snapshot(self) -> dict[str, Any]:
        return {"commands": [self.by_id[c] for ids in self.by_device.values() for c in ids]}

    def restore(self, data: dict[str, Any]) -> None:
        self.__init__()
        for command in data.get("commands", []):
            command.setdefault("attempts", 1 if command.get("sent") else 0)
            command.setdefault("max_attempts", None)
            self.by_id[command["id"]] = command
            self.by_device.setdefault(command["device_id"], []).append(command["id"])
            if command["state"] == "queued":
                self.queued[command["id"]] = command
            elif command["state"] == "sent":
                self.sent[command["id"]] = command

"""What the model keeps of PUSH terminals beyond the common registry: per serial number, the last
upload stamp of each table (the handshake hands them back so a terminal resends nothing already
stored), the device information it reported and the users it listed.
"""

from __future__ import annotations

from typing import Any

from ....journal.record import Record
from .codec import MAX_INFO_KEYS

MAX_USERS_PER_TERMINAL = 100_000


class PushState:
    name = "push"

    def __init__(self) -> None:
        self.terminals: dict[str, dict[str, Any]] = {}

    def appliers(self):
        return {
            "push.stamp": self._stamp,
            "push.info": self._info,
            "push.users": self._users,
            "terminal.rejected": self._forget,
            "terminal.deleted": self._forget,
        }

    def get(self, sn: str) -> dict[str, Any]:
        return self.terminals.get(sn) or {"stamps": {}, "info": {}, "users": {}}

    def stamps(self, sn: str) -> dict[str, str]:
        return self.get(sn)["stamps"]

    def _entry(self, sn: str) -> dict[str, Any]:
        entry = self.terminals.get(sn)
        if entry is None:
            entry = self.terminals[sn] = {"stamps": {}, "info": {}, "users": {}}
        return entry

    def _stamp(self, record: Record) -> None:
        data = record.data
        self._entry(data["sn"])["stamps"][data["table"]] = data["stamp"]

    def _info(self, record: Record) -> None:
        info = self._entry(record.data["sn"])["info"]
        for key, value in record.data["info"].items():
            if key in info or len(info) < MAX_INFO_KEYS:
                info[key] = value

    def _users(self, record: Record) -> None:
        users = self._entry(record.data["sn"])["users"]
        for user in record.data["users"]:
            pin = str(user["enrollid"])
            if pin in users or len(users) < MAX_USERS_PER_TERMINAL:
                users[pin] = user
        for pin in record.data.get("deleted", ()):
            users.pop(str(pin), None)

    def _forget(self, record: Record) -> None:
        # A rejected terminal's held punches are dropped: its stamps must not claim they are stored.
        self.terminals.pop(record.data["sn"], None)

    def snapshot(self) -> dict[str, Any]:
        return {"terminals": self.terminals}

    def restore(self, data: dict[str, Any]) -> None:
        self.terminals = data.get("terminals", {})

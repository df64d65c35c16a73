"""The users each cmd/ret terminal holds, as far as gatewayd has seen them: enrolled on the terminal
(`senduser`), listed by it (`getuserlist`), or changed by commands it acknowledged.

Per serial number: enrollid (as text) -> {"enrollid", "name", "admin", "credentials", "enabled",
"updated", "source"}; plus when the list was last complete (a full `getuserlist`). `name`, `admin`
and `enabled` are None until something reported them.

Records:
- `terminal.user_enrolled`: sn, connector, user (one partial user), credential_chars (senduser).
- `terminal.users`: sn, source, users (partial users merged in), replace (drop the list first: the
  first chunk of a complete listing, cleanuser, initsys), deleted (enrollids), deleted_credentials
  ([enrollid, backupnum] pairs), admins_cleared (cleanadmin: every user is a plain user now),
  complete (the listing was the terminal's whole list).
"""

from __future__ import annotations

from typing import Any

from ...journal.record import Record

MAX_USERS_PER_TERMINAL = 100_000


class TerminalUsersState:
    name = "terminal_users"

    def __init__(self) -> None:
        self.terminals: dict[str, dict[str, Any]] = {}

    def appliers(self):
        return {
            "terminal.user_enrolled": self._enrolled,
            "terminal.users": self._users,
            "terminal.deleted": self._forget,
        }

    # -- lookups ----------------------------------------------------------------------------------
    def get(self, sn: str) -> dict[str, Any]:
        """{"users": {enrollid text: user}, "listed": ts | None, "updated": ts | None}."""
        return self.terminals.get(sn) or {"users": {}, "listed": None, "updated": None}

    def users(self, sn: str) -> list[dict[str, Any]]:
        return sorted(self.get(sn)["users"].values(), key=lambda user: user["enrollid"])

    # -- appliers ---------------------------------------------------------------------------------
    def _entry(self, sn: str) -> dict[str, Any]:
        entry = self.terminals.get(sn)
        if entry is None:
            entry = self.terminals[sn] = {"users": {}, "listed": None, "updated": None}
        return entry

    def _merge(self, entry: dict[str, Any], user: dict[str, Any], record: Record, source: str) -> None:
        users = entry["users"]
        key = str(user["enrollid"])
        known = users.get(key)
        if known is None:
            if len(users) >= MAX_USERS_PER_TERMINAL:
                return
            known = users[key] = {"enrollid": user["enrollid"], "name": None, "admin": None, "credentials": [],
                                  "enabled": None}
        for field in ("name", "admin", "enabled"):
            if field in user:
                known[field] = user[field]
        if user.get("credentials"):
            known["credentials"] = sorted(set(known["credentials"]) | set(user["credentials"]))
        known.update(updated=record.ts, source=source)

    def _enrolled(self, record: Record) -> None:
        data = record.data
        entry = self._entry(data["sn"])
        self._merge(entry, data["user"], record, "senduser")
        entry["updated"] = record.ts

    def _users(self, record: Record) -> None:
        data = record.data
        entry = self._entry(data["sn"])
        if data.get("replace"):
            entry["users"] = {}
        for user in data.get("users", ()):
            self._merge(entry, user, record, data.get("source", ""))
        for enrollid in data.get("deleted", ()):
            entry["users"].pop(str(enrollid), None)
        for enrollid, backupnum in data.get("deleted_credentials", ()):
            user = entry["users"].get(str(enrollid))
            if user is not None:
                user["credentials"] = [c for c in user["credentials"] if c != backupnum]
                user["updated"] = record.ts
        if data.get("admins_cleared"):
            for user in entry["users"].values():
                user["admin"] = 0
        if data.get("complete"):
            entry["listed"] = record.ts
        entry["updated"] = record.ts

    def _forget(self, record: Record) -> None:
        self.terminals.pop(record.data["sn"], None)

    # -- snapshots --------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"terminals": self.terminals}

    def restore(self, data: dict[str, Any]) -> None:
        self.terminals = data.get("terminals", {})

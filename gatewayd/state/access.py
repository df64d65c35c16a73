"""Operator credentials: the admin password hash, the API keys (hashes only), and the dashboard
sessions that were logged out before they expired (by a hash of their id; kept until they expire,
so a logged-out cookie stays refused across restarts)."""

from __future__ import annotations

from typing import Any

from ..journal.record import Record, parse_ts

MAX_REVOKED_SESSIONS = 10_000


class AccessState:
    name = "access"

    def __init__(self) -> None:
        self.admin_hash: str | None = None
        self.admin_changed: str | None = None
        self.api_keys: dict[str, dict[str, Any]] = {}
        self.revoked_sessions: dict[str, float] = {}  # hash of a session id -> its expiry (epoch seconds)

    def appliers(self):
        return {
            "admin.password_set": self._password_set,
            "apikey.created": self._key_created,
            "apikey.revoked": self._key_revoked,
            "auth.logout": self._logout,
        }

    def _password_set(self, record: Record) -> None:
        self.admin_hash = record.data["hash"]
        self.admin_changed = record.ts

    def _key_created(self, record: Record) -> None:
        data = record.data
        self.api_keys[data["key_id"]] = {"key_id": data["key_id"], "name": data["name"],
                                         "hash": data["hash"], "created": record.ts, "revoked": None}

    def _key_revoked(self, record: Record) -> None:
        key = self.api_keys.get(record.data["key_id"])
        if key is not None:
            key["revoked"] = record.ts

    def _logout(self, record: Record) -> None:
        now = parse_ts(record.ts).timestamp()
        revoked = {sid: exp for sid, exp in self.revoked_sessions.items() if exp > now}
        revoked[record.data["sid_hash"]] = float(record.data["exp"])
        while len(revoked) > MAX_REVOKED_SESSIONS:  # forget the soonest to expire
            del revoked[min(revoked, key=revoked.__getitem__)]
        self.revoked_sessions = revoked

    def snapshot(self) -> dict[str, Any]:
        return {"admin_hash": self.admin_hash, "admin_changed": self.admin_changed, "api_keys": self.api_keys,
                "revoked_sessions": self.revoked_sessions}

    def restore(self, data: dict[str, Any]) -> None:
        self.admin_hash = data["admin_hash"]
        self.admin_changed = data.get("admin_changed")
        self.api_keys = data["api_keys"]
        self.revoked_sessions = data.get("revoked_sessions", {})

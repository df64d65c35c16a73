"""Operator credentials: the admin password hash and the API keys (hashes only)."""

from __future__ import annotations

from typing import Any

from ..journal.record import Record


class AccessState:
    name = "access"

    def __init__(self) -> None:
        self.admin_hash: str | None = None
        self.admin_changed: str | None = None
        self.api_keys: dict[str, dict[str, Any]] = {}

    def appliers(self):
        return {
            "admin.password_set": self._password_set,
            "apikey.created": self._key_created,
            "apikey.revoked": self._key_revoked,
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

    def snapshot(self) -> dict[str, Any]:
        return {"admin_hash": self.admin_hash, "admin_changed": self.admin_changed, "api_keys": self.api_keys}

    def restore(self, data: dict[str, Any]) -> None:
        self.admin_hash = data["admin_hash"]
        self.admin_changed = data.get("admin_changed")
        self.api_keys = data["api_keys"]

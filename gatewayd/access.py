"""Operator access: the admin password, API keys, and refusing brute force."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from . import secrets_ as sec
from .ops import OpError, not_found, operation
from .ratelimit import FailureLimiter

log = logging.getLogger("gatewayd.access")

API_KEY_PREFIX = "gwk"


class AccessService:
    def __init__(self, core):
        self.core = core
        self.limiter = FailureLimiter(core.settings.security.login_failures_per_minute)

    @property
    def part(self):
        return self.core.state.access

    async def ensure_admin(self) -> str | None:
        """On an empty state, create the admin password and return it (to be printed once)."""
        if self.part.admin_hash is not None:
            return None
        password = secrets.token_urlsafe(12)
        await self.core.hub.publish("admin.password_set", {"hash": sec.hash_password(password), "generated": True})
        return password

    async def set_password(self, password: str, actor: str) -> None:
        if len(password) < 8:
            raise OpError("invalid", "the password must have at least 8 characters", 422)
        await self.core.hub.publish("admin.password_set", {"hash": sec.hash_password(password),
                                                           "generated": False, "actor": actor})

    def check_password(self, password: str) -> bool:
        stored = self.part.admin_hash
        return bool(stored) and sec.check_password(password, stored)

    def check_api_key(self, key: str) -> dict[str, Any] | None:
        """The key's record if `key` is a live API key, else None. Constant time per candidate."""
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
            return None
        entry = self.part.api_keys.get(parts[1])
        if entry is None or entry["revoked"] or not sec.check_token(key, entry["hash"]):
            return None
        return entry

    async def record_failure(self, kind: str, source: str, subject: str = "") -> None:
        """A failed login / bad API key / bad device token: rate-limited per source and journaled."""
        self.limiter.failed(f"{kind}:{source}")
        await self.core.hub.publish("auth.failed", {"kind": kind, "source": source, "subject": subject[:64]},
                                    durable=False)

    def blocked(self, kind: str, source: str) -> bool:
        return self.limiter.blocked(f"{kind}:{source}")


def _public_key(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("key_id", "name", "created", "revoked")}


@operation("apikey.create")
async def apikey_create(core, name: str) -> dict[str, Any]:
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise OpError("invalid", "an API key needs a name of 1 to 64 characters", 422)
    key_id = sec.new_id()
    key = f"{API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"
    await core.hub.publish("apikey.created", {"key_id": key_id, "name": name.strip(), "hash": sec.hash_token(key)})
    return {"key_id": key_id, "name": name.strip(), "key": key}


@operation("apikey.list")
async def apikey_list(core) -> list[dict[str, Any]]:
    return [_public_key(e) for e in core.state.access.api_keys.values()]


@operation("apikey.revoke")
async def apikey_revoke(core, key_id: str) -> dict[str, Any]:
    entry = core.state.access.api_keys.get(key_id)
    if entry is None:
        raise not_found("API key", key_id)
    if not entry["revoked"]:
        await core.hub.publish("apikey.revoked", {"key_id": key_id})
    return _public_key(entry)


@operation("admin.set_password")
async def admin_set_password(core, password: str, actor: str = "cli") -> dict[str, Any]:
    await core.access.set_password(password, actor)
    return {"changed": True}

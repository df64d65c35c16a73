"""Operator access: the admin password, API keys, and refusing brute force."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import trio

from . import secrets_ as sec
from .ops import OpError, not_found, operation
from .ratelimit import FailureLimiter

log = logging.getLogger("gatewayd.access")

API_KEY_PREFIX = "gwk"


class AccessService:
    def __init__(self, core):
        self.core = core
        self.limiter = FailureLimiter(core.settings.security.login_failures_per_minute)
        self.user_limiter = FailureLimiter(core.settings.security.login_failures_per_minute_per_user)
        # Each password check holds ~16 MiB (scrypt) in a worker thread: only a few at once.
        self.password_checks = trio.CapacityLimiter(core.settings.security.max_concurrent_password_checks)
        self._subject_key: bytes | None = None
        core.metrics.describe("gatewayd_password_checks_total", "Password hashes computed for logins.")

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

    async def check_password_limited(self, password: str, patience: float = 10.0) -> bool | None:
        """check_password in a worker thread, at most `max_concurrent_password_checks` at once;
        None when no turn came within `patience` seconds."""
        with trio.move_on_after(patience):
            async with self.password_checks:
                self.core.metrics.inc("gatewayd_password_checks_total")
                return await trio.to_thread.run_sync(self.check_password, password)
        return None

    def subject_hash(self, purpose: str, text: str) -> str:
        """A salted hash of a name typed by someone unauthenticated (it may be a password typed in
        the wrong field): failed-login records and throttles hold this, never the text."""
        if self._subject_key is None:
            self._subject_key = sec.load_or_create_key(self.core.settings.state_path / "subject.key")
        return sec.keyed_digest(self._subject_key, purpose, text)

    def check_api_key(self, key: str) -> dict[str, Any] | None:
        """The key's record if `key` is a live API key, else None. Constant time per candidate."""
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
            return None
        entry = self.part.api_keys.get(parts[1])
        if entry is None or entry["revoked"] or not sec.check_token(key, entry["hash"]):
            return None
        return entry

    async def record_failure(self, kind: str, source: str, subject: str = "", *, user_hash: str | None = None,
                             counted: bool = False) -> None:
        """A failed login / bad API key / bad device token: rate-limited per source and journaled.
        `subject` is an identifier that may be shown (a device id); nothing of a bearer value or of
        a typed user name is ever passed here (logins give `user_hash`). `counted`: the attempt
        was counted already (count_attempt)."""
        if not counted:
            self.limiter.failed(f"{kind}:{source}")
        data = {"kind": kind, "source": source}
        if subject:
            data["subject"] = subject[:64]
        if user_hash:
            data["user_hash"] = user_hash
        await self.core.hub.publish("auth.failed", data, durable=False)

    def count_attempt(self, kind: str, key: str) -> None:
        """Count an attempt as failed before it is checked (success clears it)."""
        (self.user_limiter if kind == "login_user" else self.limiter).failed(f"{kind}:{key}")

    def blocked(self, kind: str, source: str) -> bool:
        limiter = self.user_limiter if kind == "login_user" else self.limiter
        return limiter.blocked(f"{kind}:{source}")


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

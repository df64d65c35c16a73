"""The device registry: creating devices and their tokens, changing and removing them, checking a
device's credentials, and storing what devices send (telemetry, events).

Tokens (`tok_<32 random bytes>`) are returned once by `device.create` / `device.rotate_token` and
kept only as hashes. Every change is a journal record carrying the operator (`actor`).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from ... import secrets_ as sec
from ...journal.writer import Batch
from ...ops import OpError, not_found, operation

TOKEN_PREFIX = "tok"
TOKEN_BYTES = 32  # 256 bits
MAX_NAME_CHARS = 64
MAX_TAGS = 32
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:=/-]{0,31}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
KINDS = ("ws", "lorawan")
PUBLIC_LORAWAN_FIELDS = ("dev_eui", "app_eui", "dev_addr", "relax_fcnt", "activation")
_DUMMY_HASH = sec.hash_token("tok_not-a-device")


_RECORD_TYPES = {"telemetry": "device.telemetry", "event": "device.event"}


class AuthFailed(Exception):
    """A device's credentials were refused; the message is safe to send to the device."""


class DeviceRegistry:
    def __init__(self, core):
        self.core = core

    @property
    def part(self):
        return self.core.state.devices

    def require(self, device_id: Any) -> dict[str, Any]:
        device = self.part.get(device_id) if isinstance(device_id, str) else None
        if device is None:
            raise not_found("device", str(device_id)[:64])
        return device

    def authenticate(self, device_id: str, token: str) -> dict[str, Any]:
        """The device if `token` is its current token and it is enabled; AuthFailed otherwise.
        The hash comparison runs (against a dummy) even for unknown devices."""
        device = self.part.get(device_id)
        stored = device.get("token_hash") if device else None
        ok = sec.check_token(token, stored or _DUMMY_HASH) and stored is not None
        if device is None or not ok:
            raise AuthFailed("unknown device or wrong token")
        if not device["enabled"]:
            raise AuthFailed("device is disabled")
        return device

    def token_matches(self, device_id: str, token_hash: str) -> bool:
        device = self.part.get(device_id)
        return device is not None and device["enabled"] and device.get("token_hash") == token_hash

    async def store(self, device: dict[str, Any], kind: str, fields: dict[str, Any], *, durable: bool,
                    connector: str = "ws", dialect: str | None = None):
        """Journal one telemetry or event message (kind "telemetry" | "event")."""
        data = {"device_id": device["id"], "name": device["name"], "connector": connector, **fields}
        if dialect:
            data["dialect"] = dialect
        return await self.core.hub.publish(f"device.{kind}", data, durable=durable)

    def append(self, device: dict[str, Any], msg, durable: bool, *, connector: str = "ws",
               dialect: str | None = None) -> Batch:
        """`store` for a decoded Telemetry or Event (messages.py), without waiting: journal and apply
        its record now through `hub.append` (the caller checked `hub.crowded`); the same record as
        `store` writes. Await the returned batch's `wait()` for durability."""
        data = {"device_id": device["id"], "name": device["name"], "connector": connector}
        if msg.kind == "event":
            data["event"] = msg.event
        data["payload"] = msg.payload
        if msg.ts is not None:
            data["device_ts"] = msg.ts
        if msg.msg_id is not None:
            data["msg_id"] = msg.msg_id
        if dialect:
            data["dialect"] = dialect
        return self.core.hub.append(_RECORD_TYPES[msg.kind], data, durable)


# -- validation -----------------------------------------------------------------------------------------
def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise OpError("invalid", "a device needs a name (1 to 64 characters)", 422, field="name")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS or _CONTROL.search(name):
        raise OpError("invalid", f"a device name has 1 to {MAX_NAME_CHARS} printable characters", 422, field="name")
    return name


def check_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [t for t in (part.strip() for part in tags.split(",")) if t]
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise OpError("invalid", f"tags must be a list of at most {MAX_TAGS} strings", 422)
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise OpError("invalid", f"tag {str(tag)[:40]!r}: use 1-32 letters, digits and _ . : = / -", 422,
                          field="tags")
        if tag not in out:
            out.append(tag)
    return out


def public(device: dict[str, Any]) -> dict[str, Any]:
    """A device as operators see it: never the token hash nor LoRaWAN keys."""
    out = {k: v for k, v in device.items() if k not in ("token_hash", "lorawan")}
    out["status"] = "disabled" if not device["enabled"] else ("online" if device["online"] else "offline")
    if isinstance(device.get("lorawan"), dict):
        out["lorawan"] = {k: device["lorawan"][k] for k in PUBLIC_LORAWAN_FIELDS if k in device["lorawan"]}
    return out


def _actor(actor: Any) -> str:
    return actor if isinstance(actor, str) and actor else "cli"


async def _cut(core, device_id: str, code: int, reason: str) -> None:
    presence = core.services.get("presence")
    if presence is not None:
        presence.cut(device_id, code, reason)


# -- operations ---------------------------------------------------------------------------------------------
@operation("device.create")
async def device_create(core, name: str, kind: str | None = None, tags: Any = None,
                        lorawan: dict | None = None, actor: str = "cli") -> dict[str, Any]:
    name = check_name(name)
    tags = check_tags(tags)
    kind = kind or ("lorawan" if lorawan is not None else "ws")
    if kind not in KINDS:
        raise OpError("invalid", f"kind must be one of {', '.join(KINDS)}", 422)
    device_id = str(uuid.uuid4())
    data: dict[str, Any] = {"device_id": device_id, "name": name, "kind": kind, "tags": tags,
                            "actor": _actor(actor)}
    token = None
    if kind == "lorawan":
        if not isinstance(lorawan, dict):
            raise OpError("invalid", "a LoRaWAN device needs its `lorawan` settings (an object)", 422)
        service = core.services.get("lorawan")
        if service is None:
            raise OpError("unsupported", "LoRaWAN is not available in this gatewayd", 422)
        data["lorawan"] = service.prepare_device(lorawan)
    else:
        if lorawan is not None:
            raise OpError("invalid", "`lorawan` settings need kind \"lorawan\"", 422)
        token = sec.new_token(TOKEN_PREFIX, TOKEN_BYTES)
        data["token_hash"] = sec.hash_token(token)
    await core.hub.publish("device.created", data)
    result = public(core.state.devices.get(device_id))
    if token is not None:
        result["token"] = token
    return result


@operation("device.list")
async def device_list(core, tag: str | None = None, status: str | None = None,
                      kind: str | None = None) -> list[dict[str, Any]]:
    devices = [public(d) for d in core.state.devices.devices.values()]
    if tag:
        devices = [d for d in devices if tag in d["tags"]]
    if status:
        devices = [d for d in devices if d["status"] == status]
    if kind:
        devices = [d for d in devices if d["kind"] == kind]
    return devices


@operation("device.show")
async def device_show(core, device_id: str) -> dict[str, Any]:
    device = public(core.service("devices").require(device_id))
    device["latest"] = core.state.devices.latest.get(device_id, {})
    device["commands_pending"] = len(core.state.commands.pending(device_id))
    return device


@operation("device.update")
async def device_update(core, device_id: str, name: str | None = None, tags: Any = None,
                        enabled: bool | None = None, actor: str = "cli") -> dict[str, Any]:
    device = core.service("devices").require(device_id)
    changes: dict[str, Any] = {}
    if name is not None and check_name(name) != device["name"]:
        changes["name"] = check_name(name)
    if tags is not None and check_tags(tags) != device["tags"]:
        changes["tags"] = check_tags(tags)
    if enabled is not None and not isinstance(enabled, bool):
        raise OpError("invalid", "enabled must be true or false", 422)
    if changes:
        await core.hub.publish("device.updated", {"device_id": device_id, "name": changes.get("name", device["name"]),
                                                  "changes": changes, "actor": _actor(actor)})
    if enabled is not None and enabled != device["enabled"]:
        await _set_enabled(core, device, enabled, actor)
    return public(core.state.devices.get(device_id))


async def _set_enabled(core, device: dict[str, Any], enabled: bool, actor: str) -> None:
    await core.hub.publish("device.enabled" if enabled else "device.disabled",
                           {"device_id": device["id"], "name": device["name"], "actor": _actor(actor)})
    if not enabled:
        await _cut(core, device["id"], 4001, "device disabled")


@operation("device.enable")
async def device_enable(core, device_id: str, actor: str = "cli") -> dict[str, Any]:
    device = core.service("devices").require(device_id)
    if not device["enabled"]:
        await _set_enabled(core, device, True, actor)
    return public(core.state.devices.get(device_id))


@operation("device.disable")
async def device_disable(core, device_id: str, actor: str = "cli") -> dict[str, Any]:
    device = core.service("devices").require(device_id)
    if device["enabled"]:
        await _set_enabled(core, device, False, actor)
    return public(core.state.devices.get(device_id))


@operation("device.delete")
async def device_delete(core, device_id: str, actor: str = "cli") -> dict[str, Any]:
    device = core.service("devices").require(device_id)
    await core.hub.publish("device.deleted", {"device_id": device_id, "name": device["name"], "kind": device["kind"],
                                              "actor": _actor(actor)})
    await _cut(core, device_id, 4001, "device deleted")
    return {"id": device_id, "deleted": True}


@operation("device.rotate_token")
async def device_rotate_token(core, device_id: str, actor: str = "cli") -> dict[str, Any]:
    device = core.service("devices").require(device_id)
    if device["kind"] != "ws":
        raise OpError("invalid", f"a {device['kind']} device has no token", 422)
    token = sec.new_token(TOKEN_PREFIX, TOKEN_BYTES)
    await core.hub.publish("device.token_rotated", {"device_id": device_id, "name": device["name"],
                                                    "token_hash": sec.hash_token(token), "actor": _actor(actor)})
    await _cut(core, device_id, 4001, "token rotated")
    return {"id": device_id, "token": token}


EVERY_US = {"1m": 60_000_000, "1h": 3_600_000_000, "1d": 86_400_000_000}
SERIES_DAYS_DEFAULT = 1
MAX_KEY_CHARS = 128


@operation("device.telemetry")
async def device_telemetry(core, device_id: str, since: str | None = None, until: str | None = None,
                           limit: int = 100, key: str | None = None, every: str | None = None) -> dict[str, Any]:
    """Telemetry history from the history store, and the latest values.

    Without `key`: the last `limit` messages in [since, until], oldest first. With `key`: that key's
    numeric values in [since, until) (default: the last 24 hours) as time buckets with mean, min, max
    and count; a bucket is `every` (1m, 1h, 1d) or wider, so that there are at most `limit` (whole
    hours once wider than 15 minutes)."""
    from ...history import queries
    from ...history.ops import time_param_us

    core.service("devices").require(device_id)
    limit = _limit(limit)
    low = time_param_us(since, "since")
    high = time_param_us(until, "until")
    latest = core.state.devices.latest.get(device_id, {})
    history = core.history
    if key is None:
        if every is not None:
            raise OpError("invalid", "every needs a key", 422)
        await history.wait_applied()
        items = history.read(queries.telemetry_messages, device_id, low, high, limit)
        return {"device_id": device_id, "latest": latest, "items": items}
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS or '"' in key or "\\" in key:
        raise OpError("invalid", f"key must be a telemetry key of 1 to {MAX_KEY_CHARS} characters "
                                 "without quotes or backslashes", 422)
    if every is not None and every not in EVERY_US:
        raise OpError("invalid", f"every must be one of {', '.join(EVERY_US)}", 422)
    if limit == 0:
        raise OpError("invalid", "limit must be at least 1 with a key", 422)
    import time

    high = time.time_ns() // 1000 + 1 if high is None else high + 1
    low = high - SERIES_DAYS_DEFAULT * 86_400_000 if low is None else low
    if low >= high:
        raise OpError("invalid", "since must be before until", 422)
    bucket = max(EVERY_US.get(every, 1000), -(-(high - low) // limit))
    # Whole seconds; past a quarter of an hour, whole hours (served from the hourly figures).
    unit = 3_600_000_000 if bucket > 900_000_000 else 1_000_000
    bucket = -(-bucket // unit) * unit
    await history.wait_applied()
    points = history.read(queries.telemetry_series, device_id, key, low, high, bucket)
    return {"device_id": device_id, "key": key, "every_seconds": bucket // 1_000_000, "since": queries.iso_us(low),
            "until": queries.iso_us(high - 1), "points": points[-limit:], "latest": latest}


@operation("device.events")
async def device_events(core, since: int = 0, limit: int = 100, device_id: str | None = None) -> dict[str, Any]:
    """Recent device events (presence changes and device-reported events) with seq > since."""
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise OpError("invalid", "since must be a non-negative sequence number", 422)
    limit = _limit(limit)
    items = [e for e in core.state.devices.events if e["seq"] > since
             and (device_id is None or e["device_id"] == device_id)]
    items = items[:limit]
    return {"items": items, "last_seq": items[-1]["seq"] if items else since}


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 10_000:
        raise OpError("invalid", "limit must be an integer from 0 to 10000", 422)
    return limit

"""Operations on the terminal registry (add, list, get, update, approve, reject, delete) and the
checks of the settings an operator gives a terminal."""

from __future__ import annotations

import codecs
from typing import Any

from . import access as door
from ...ops import OpError, operation
from .attendance import zone
from .service import MAX_NAME_CHARS, check_sn


def _check_settings(name: Any = None, tz: Any = None, cloudtime: Any = None,
                    encoding: Any = None, access: Any = None) -> dict[str, Any]:
    """Validated registry settings; "" for tz / cloudtime / encoding means "the global default",
    "" or "none" for access means no door rule."""
    out: dict[str, Any] = {}
    if access is not None:
        out["access"] = door.check_rule(access)
    if name is not None:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_CHARS:
            raise OpError("invalid", f"name must be 1 to {MAX_NAME_CHARS} characters", 422)
        out["name"] = name.strip()
    if tz is not None:
        if not isinstance(tz, str):
            raise OpError("invalid", "tz must be a time zone name such as Europe/Rome", 422)
        if tz:
            zone(tz)
        out["tz"] = tz or None
    if cloudtime is not None:
        if cloudtime not in ("iso", "local", ""):
            raise OpError("invalid", "cloudtime must be iso or local", 422)
        out["cloudtime"] = cloudtime or None
    if encoding is not None:
        out["encoding"] = check_encoding(encoding) or None
    return out


def check_encoding(encoding: Any, where: str = "encoding") -> str:
    """A text encoding Python knows ('' allowed), e.g. gbk or cp1252: how a PUSH terminal's names
    are read when they are not UTF-8."""
    if not isinstance(encoding, str) or len(encoding) > 32:
        raise OpError("invalid", f"{where} must be an encoding name such as gbk", 422)
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise OpError("invalid", f"{where}: unknown encoding {encoding!r}", 422) from None
    return encoding


# -- operations ------------------------------------------------------------------------------------
@operation("terminal.add")
async def terminal_add(core, sn: str, name: str | None = None, tz: str | None = None,
                       cloudtime: str | None = None, encoding: str | None = None, access: Any = None,
                       actor: str = "cli") -> dict[str, Any]:
    sn = check_sn(sn)
    settings = _check_settings(name, tz, cloudtime, encoding, access)
    service = core.service("terminals")
    terminal = service.part.get(sn)
    if terminal is not None and terminal["status"] == "accepted":
        raise OpError("conflict", f"terminal {sn} exists already", 409)
    if terminal is not None:  # adding a pending or rejected terminal approves it
        return await service.approve(sn, actor, settings)
    await core.hub.publish("terminal.added", {"sn": sn, "name": settings.get("name", sn), "actor": actor,
                                              **{k: v for k, v in settings.items() if k != "name"}})
    return service.public(service.part.get(sn))


@operation("terminal.list")
async def terminal_list(core, status: str | None = None) -> list[dict[str, Any]]:
    if status not in (None, "accepted", "pending", "rejected"):
        raise OpError("invalid", "status must be accepted, pending or rejected", 422)
    service = core.service("terminals")
    return [service.public(t) for t in service.part.terminals.values() if status in (None, t["status"])]


@operation("terminal.get")
async def terminal_get(core, sn: str) -> dict[str, Any]:
    service = core.service("terminals")
    return service.public(service.require(sn))


@operation("terminal.update")
async def terminal_update(core, sn: str, name: str | None = None, tz: str | None = None,
                          cloudtime: str | None = None, encoding: str | None = None, access: Any = None,
                          actor: str = "cli") -> dict[str, Any]:
    service = core.service("terminals")
    terminal = service.require(sn)
    changes = _check_settings(name, tz, cloudtime, encoding, access)
    if not changes:
        raise OpError("invalid", "nothing to change: give name, tz, cloudtime, encoding or access", 422)
    await core.hub.publish("terminal.updated", {"sn": terminal["sn"], "actor": actor, **changes})
    return service.public(service.part.get(terminal["sn"]))


@operation("terminal.approve")
async def terminal_approve(core, sn: str, actor: str = "cli") -> dict[str, Any]:
    return await core.service("terminals").approve(check_sn(sn), actor)


@operation("terminal.reject")
async def terminal_reject(core, sn: str, actor: str = "cli") -> dict[str, Any]:
    return await core.service("terminals").reject(check_sn(sn), actor)


@operation("terminal.delete")
async def terminal_delete(core, sn: str, actor: str = "cli") -> dict[str, Any]:
    return await core.service("terminals").delete(check_sn(sn), actor)

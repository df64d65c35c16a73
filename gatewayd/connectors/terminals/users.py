"""The user list of each terminal: what goes into it (`senduser` via service.py, `getuserlist`,
commands the terminal acknowledged) and how operators read it (`terminal.users`, GET /api/terminals/{sn}/users,
`gatewayd terminal users SN [--refresh]`). The state lives in users_state.py."""

from __future__ import annotations

from typing import Any

from . import command_codec as tc
from . import user_codec
from ...ops import OpError, operation
from .service import check_sn, protocol_of

USERS_PER_RECORD = 1000
_ALL_FINGERPRINTS = 12
_EVERYTHING = 13


async def record_listing(core, sn: str, users: list[dict[str, Any]], complete: bool) -> None:
    """The users of a `getuserlist` run. A complete listing replaces the list; a partial one (page
    cap reached, refused part-way) only adds to it."""
    chunks = [users[i:i + USERS_PER_RECORD] for i in range(0, len(users), USERS_PER_RECORD)] or [[]]
    last = len(chunks) - 1
    await core.hub.publish_many([("terminal.users", {
        "sn": sn, "source": "getuserlist", "users": chunk, "replace": complete and i == 0,
        "complete": complete and i == last}) for i, chunk in enumerate(chunks)])


def listing_complete(last_reply: tc.TerminalReply | None) -> bool:
    """Whether a paged getuserlist ended because the terminal had nothing more (not on the page cap)."""
    return last_reply is not None and last_reply.result and tc.page_done(last_reply, 1, 2**31)


def changes_from(command: str, params: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an acknowledged command did to the terminal's users, as `terminal.users` data (no sn)."""
    result = result or {}
    enrollid = params.get("enrollid")
    if command == "setuserinfo":
        return _upsert(command, {"enrollid": enrollid, "name": params["name"], "admin": params["admin"],
                                 "credentials": [params["backupnum"]]})
    if command == "setusername":
        return {"source": command, "users": [{"enrollid": row["enrollid"], "name": row["name"]}
                                             for row in params.get("record", ())]}
    if command == "enableuser":
        flag = params.get("enflag", params.get("enable"))
        return _upsert(command, {"enrollid": enrollid, "enabled": bool(flag)})
    if command == "getusername" and isinstance(result.get("record"), str):
        users = user_codec.users_in_rows([{"enrollid": enrollid, "name": result["record"]}])
        return {"source": command, "users": users} if users else None
    if command == "getuserinfo":
        row = {"enrollid": enrollid, "backupnum": params.get("backupnum"),
               **{k: result[k] for k in ("name", "admin") if k in result}}
        return {"source": command, "users": user_codec.users_in_rows([row])}
    if command == "deleteuser":
        backupnum = params.get("backupnum")
        if backupnum == _EVERYTHING:
            return {"source": command, "deleted": [enrollid]}
        gone = range(10) if backupnum == _ALL_FINGERPRINTS else (backupnum,)
        return {"source": command, "deleted_credentials": [[enrollid, n] for n in gone]}
    if command in ("cleanuser", "initsys"):
        return {"source": command, "users": [], "replace": True, "complete": True}
    if command == "cleanadmin":
        return {"source": command, "admins_cleared": True}
    return None


def _upsert(command: str, user: dict[str, Any]) -> dict[str, Any]:
    return {"source": command, "users": [user]}


def public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {**user, "credential_kinds": [tc.BACKUPNUM.get(n, f"code {n}") for n in user["credentials"]]}


@operation("terminal.users")
async def terminal_users(core, sn: str, refresh: bool = False) -> dict[str, Any]:
    """The users gatewayd knows of on a terminal. `refresh` first runs `getuserlist` on the
    terminal (cmd/ret over WebSocket; the daemon must be running)."""
    sn = check_sn(sn)
    terminal = core.state.terminals.get(sn)
    if terminal is None:
        raise OpError("not_found", f"no terminal with serial number {sn!r}", 404)
    if not isinstance(refresh, bool):
        raise OpError("invalid", "refresh must be true or false", 422)
    if protocol_of(terminal) == "push":  # what its last uploads listed
        return {"sn": sn, "protocol": "push", "pages": 0, "users": core.service("push").users(sn)}
    pages = 0
    if refresh:
        if not core.online:
            raise OpError("daemon_required", "refreshing the user list needs a running gatewayd", 409)
        pages = (await core.service("terminal_commands").list_users(sn))["pages"]
    entry = core.state.terminal_users.get(sn)
    return {"sn": sn, "protocol": protocol_of(terminal), "pages": pages, "listed": entry["listed"],
            "updated": entry["updated"],
            "users": [public_user(user) for user in core.state.terminal_users.users(sn)]}

"""Users enrolled on cmd/ret terminals: the `senduser` request (a user enrolled or changed on the
terminal itself) and the user rows of `getuserlist` replies, read into one shape:

    {"enrollid": 12, "name": "Ann", "admin": 0, "credentials": [0, 11]}

`name` and `admin` are left out when the message does not carry them. `credentials` lists the
`backupnum` codes the terminal holds for the user (fingerprint slots, password, card, face...).
The credentials themselves (templates, card numbers, passwords) are never kept. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import ProtocolError
from .command_codec import ADMIN, MAX_TEMPLATE_CHARS, MAX_USER_NAME_CHARS
from .fields import describe, invalid, to_int, to_text
from .punches import MAX_ENROLLID, MAX_IMAGE_CHARS

MAX_BACKUPNUM = 99
MAX_USER_ROWS = 5000   # rows of one getuserlist page; terminals send 40 or so


@dataclass(frozen=True, slots=True)
class SendUser:
    """A user enrolled or changed on the terminal. `credential_chars` is the size of what it sent
    as `record` (kept for the record; the content is not)."""

    sn: str
    enrollid: int
    name: str | None
    admin: int
    backupnum: int | None
    credential_chars: int

    def as_user(self) -> dict:
        user: dict = {"enrollid": self.enrollid, "admin": self.admin,
                      "credentials": [] if self.backupnum is None else [self.backupnum]}
        if self.name is not None:
            user["name"] = self.name
        return user


def decode_senduser(obj: Mapping, sn: str) -> SendUser:
    enrollid = obj.get("enrollid")
    if enrollid is None:
        raise ProtocolError("missing_field", "senduser has no 'enrollid'")
    enrollid = to_int(enrollid, "senduser.enrollid", 1, MAX_ENROLLID)
    name = obj.get("name")
    if name is not None:
        name = to_text(name, "senduser.name", MAX_USER_NAME_CHARS)
    admin = obj.get("admin")
    admin = 0 if admin is None else to_int(admin, "senduser.admin", 0, max(ADMIN))
    backupnum = obj.get("backupnum")
    if backupnum is not None:
        backupnum = to_int(backupnum, "senduser.backupnum", 0, MAX_BACKUPNUM)
    return SendUser(sn, enrollid, name, admin, backupnum, _credential_chars(obj.get("record"), backupnum))


def _credential_chars(record: object, backupnum: int | None) -> int:
    if record is None:
        return 0
    if isinstance(record, int) and not isinstance(record, bool):
        return len(str(record))
    if not isinstance(record, str):
        raise invalid(f"senduser.record must be a string or an integer, got {describe(record)}")
    limit = MAX_IMAGE_CHARS if backupnum in (50, 51) else MAX_TEMPLATE_CHARS
    if len(record) > limit:
        raise invalid(f"senduser.record is {len(record)} characters long, the limit is {limit}")
    return len(record)


def users_in_rows(rows: object, where: str = "getuserlist.record") -> list[dict]:
    """The users of a `getuserlist` page: one row per (enrollid, backupnum) in the vendor's form,
    merged per enrollid. Rows without a usable enrollid are skipped (a list is informational:
    one odd row must not hide the others); so are fields of the wrong shape."""
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise invalid(f"{where} must be a list, got {describe(rows)}")
    if len(rows) > MAX_USER_ROWS:
        raise invalid(f"{where} has {len(rows)} entries, the limit is {MAX_USER_ROWS}")
    return merge_users(user for user in map(_row_user, rows) if user is not None)


def merge_users(users) -> list[dict]:
    """Partial users merged per enrollid, in the order first seen."""
    merged: dict[int, dict] = {}
    for user in users:
        known = merged.get(user["enrollid"])
        if known is None:
            merged[user["enrollid"]] = {**user, "credentials": sorted(set(user.get("credentials", ())))}
            continue
        known.update({k: v for k, v in user.items() if k not in ("enrollid", "credentials")})
        known["credentials"] = sorted(set(known["credentials"]) | set(user.get("credentials", ())))
    return list(merged.values())


def _row_user(row: object) -> dict | None:
    if not isinstance(row, Mapping):
        return None
    try:
        user: dict = {"enrollid": to_int(row.get("enrollid"), "enrollid", 1, MAX_ENROLLID), "credentials": []}
    except ProtocolError:
        return None
    for key, check in (("admin", lambda v: to_int(v, "admin", 0, max(ADMIN))),
                       ("backupnum", lambda v: to_int(v, "backupnum", 0, MAX_BACKUPNUM)),
                       ("name", lambda v: to_text(v, "name", MAX_USER_NAME_CHARS))):
        if row.get(key) is None:
            continue
        try:
            value = check(row[key])
        except ProtocolError:
            continue
        if key == "backupnum":
            user["credentials"] = [value]
        else:
            user[key] = value
    return user

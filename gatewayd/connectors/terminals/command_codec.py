"""Commands to cmd/ret terminals and their replies: each command's parameters checked before it is
sent, replies read leniently, punches taken out of getalllog / getnewlog pages. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType

from ...errors import ProtocolError
from . import command_params as cp
from .fields import CLOUDTIME, MAX_TIME_TEXT_CHARS, describe, dumps_compact, invalid, to_int, to_text
from .punches import MAX_CODE, MAX_ENROLLID, MAX_IMAGE_CHARS, MAX_RECORDS_PER_BATCH, Punch, parse_punch


MAX_USER_NAME_CHARS = 64
MAX_TEMPLATE_CHARS = 4096  # fingerprint / face / palm template
MAX_PASSWORD = 99_999_999  # terminals take at most 8 digits
MAX_CARD = 2**63 - 1
MAX_DOOR = 4

# Code tables. What mode / inout / event mean varies by firmware, so records keep the raw
# numbers; these tables name codes for display and validate what is sent to a terminal.
BACKUPNUM: Mapping[int, str] = MappingProxyType(
    {
        **{n: f"fingerprint {n}" for n in range(10)},
        10: "password",
        11: "card",
        **{n: f"face {n - 20}" for n in range(20, 28)},
        **{n: f"palm {n - 30}" for n in range(30, 38)},
        40: "palm template",
        41: "palm template (second)",
        50: "photo",
        51: "face feature",
    }
)
DELETE_BACKUPNUM: Mapping[int, str] = MappingProxyType(
    {**BACKUPNUM, 12: "all fingerprints", 13: "all credentials and the name"}
)
ADMIN: Mapping[int, str] = MappingProxyType({0: "user", 1: "admin", 2: "super user"})
ENFLAG: Mapping[int, str] = MappingProxyType({0: "disabled", 1: "enabled"})

_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)


def _check_stn(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(
            f"{where} must be true (first page) or false (next page), got {describe(value)}"
        )
    return value


def _check_enrollid(value: object, where: str) -> int:
    return to_int(value, where, 1, MAX_ENROLLID)


def _code_checker(table: Mapping[int, str]) -> Callable[[object, str], int]:
    def check(value: object, where: str) -> int:
        number = to_int(value, where, 0, MAX_CODE)
        if number not in table:
            allowed = ", ".join(str(code) for code in table)
            raise invalid(f"{where} must be one of {allowed}; got {number}")
        return number

    return check


def _check_name(value: object, where: str) -> str:
    return to_text(value, where, MAX_USER_NAME_CHARS)


def _check_credential(value: object, where: str) -> int | str:
    # Its real type depends on backupnum; `_check_user_record` finishes the job.
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return value
    raise invalid(f"{where} must be a string or an integer, got {describe(value)}")


def _check_door(value: object, where: str) -> int:
    return to_int(value, where, 1, MAX_DOOR)


def _check_cloudtime(value: object, where: str) -> str:
    text = to_text(value, where, MAX_TIME_TEXT_CHARS)
    try:
        if not CLOUDTIME.fullmatch(text):
            raise ValueError
        datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise invalid(f"{where} must be 'YYYY-MM-DD HH:MM:SS', got {describe(text)}") from None
    return text


def _parse_date(text: str) -> date | None:
    match = _DATE.fullmatch(text)
    try:
        return date(*(int(part) for part in match.groups())) if match else None
    except ValueError:
        return None


def _check_date(value: object, where: str) -> str:
    text = to_text(value, where, MAX_TIME_TEXT_CHARS)
    if _parse_date(text) is None:
        raise invalid(f"{where} must be a date 'YYYY-MM-DD', got {describe(text)}")
    return text


def _check_user_record(params: dict) -> None:
    backupnum, record = params["backupnum"], params["record"]
    where = "setuserinfo.record"
    if backupnum == 10:
        params["record"] = to_int(record, f"{where} (password)", 0, MAX_PASSWORD)
    elif backupnum == 11:
        params["record"] = to_int(record, f"{where} (card number)", 0, MAX_CARD)
    else:
        limit = MAX_IMAGE_CHARS if backupnum in (50, 51) else MAX_TEMPLATE_CHARS
        text = to_text(record, f"{where} ({BACKUPNUM[backupnum]})", limit)
        if not text:
            raise invalid(f"{where} is empty")
        params["record"] = text


def _one_of(name: str, first: str, second: str) -> Callable[[dict], None]:
    """Firmware dialects name one parameter two ways: exactly one of them must be given."""
    def check(params: dict) -> None:
        given = [key for key in (first, second) if key in params]
        if not given:
            raise ProtocolError("missing_field", f"{name} needs '{first}' (or '{second}')")
        if len(given) > 1:
            raise invalid(f"{name} takes '{first}' or '{second}', not both")
    return check


def _check_log_range(params: dict) -> None:
    if "from" in params and "to" in params:
        if _parse_date(params["from"]) > _parse_date(params["to"]):
            raise invalid(
                f"getalllog.from ({params['from']}) is after getalllog.to ({params['to']})"
            )


@dataclass(frozen=True, slots=True)
class Param:
    check: Callable[[object, str], object]
    required: bool = True


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """`params` in wire order. `paged`: answered page by page (`stn`). `count_is_total`: the
    reply's `count` is the size of the whole set rather than of the page. `fixed`: sent with every
    frame. `destructive`: erases data on the terminal; operators must confirm it."""

    params: Mapping[str, Param]
    expects_reply: bool = True
    paged: bool = False
    count_is_total: bool = False
    cross_check: Callable[[dict], None] | None = None
    fixed: Mapping[str, object] = field(default_factory=dict)
    destructive: bool = False


def _optional(checks: Mapping[str, Callable[[object, str], object]]) -> dict[str, Param]:
    return {key: Param(check, False) for key, check in checks.items()}


_STN = Param(_check_stn)
_ENROLLID = Param(_check_enrollid)

COMMANDS: Mapping[str, CommandSpec] = MappingProxyType(
    {
        "getuserlist": CommandSpec({"stn": _STN}, paged=True),
        "getuserinfo": CommandSpec(
            {"enrollid": _ENROLLID, "backupnum": Param(_code_checker(BACKUPNUM))}
        ),
        "setuserinfo": CommandSpec(
            {
                "enrollid": _ENROLLID,
                "name": Param(_check_name),
                "backupnum": Param(_code_checker(BACKUPNUM)),
                "admin": Param(_code_checker(ADMIN)),
                "record": Param(_check_credential),
            },
            cross_check=_check_user_record,
        ),
        "deleteuser": CommandSpec(
            {"enrollid": _ENROLLID, "backupnum": Param(_code_checker(DELETE_BACKUPNUM))}
        ),
        "getnewlog": CommandSpec({"stn": _STN}, paged=True, count_is_total=True),
        "getalllog": CommandSpec(
            {"stn": _STN, "from": Param(_check_date, False), "to": Param(_check_date, False)},
            paged=True,
            count_is_total=True,
            cross_check=_check_log_range,
        ),
        "cleanlog": CommandSpec({}, destructive=True),
        "settime": CommandSpec(
            {"cloudtime": Param(_check_cloudtime, False), "time": Param(_check_cloudtime, False)},
            cross_check=_one_of("settime", "cloudtime", "time"),
        ),
        "gettime": CommandSpec({}),
        "opendoor": CommandSpec({"doornum": Param(_check_door, False)}),
        "reboot": CommandSpec({}, expects_reply=False),
        "getdevinfo": CommandSpec({}),
        "enableuser": CommandSpec(
            {"enrollid": _ENROLLID, "enflag": Param(_code_checker(ENFLAG), False),
             "enable": Param(_code_checker(ENFLAG), False)},
            cross_check=_one_of("enableuser", "enflag", "enable"),
        ),
        "getusername": CommandSpec({"enrollid": _ENROLLID}),
        "setusername": CommandSpec(
            {"count": Param(cp.int_in(1, 50), False), "record": Param(cp.USER_NAMES)},
            cross_check=cp.counted("setusername"),
        ),
        "cleanuser": CommandSpec({}, destructive=True),
        "initsys": CommandSpec({}, destructive=True),
        "cleanadmin": CommandSpec({}, destructive=True),
        "setdevinfo": CommandSpec(_optional(cp.DEVINFO_FIELDS), cross_check=cp.at_least_one("setdevinfo")),
        "setdevlock": CommandSpec(_optional(cp.DEVLOCK_FIELDS), cross_check=cp.at_least_one("setdevlock")),
        "getdevlock": CommandSpec({}),
        "getuserlock": CommandSpec({"enrollid": _ENROLLID}),
        "setuserlock": CommandSpec(
            {"count": Param(cp.int_in(1, 40), False), "record": Param(cp.USER_LOCKS)},
            cross_check=cp.counted("setuserlock"),
        ),
        "deleteuserlock": CommandSpec({"enrollid": _ENROLLID}),
        "cleanuserlock": CommandSpec({}, destructive=True),
        "getholiday": CommandSpec({}, fixed=MappingProxyType({"stn": True})),
        "setholiday": CommandSpec({"holidays": Param(cp.HOLIDAYS)}),
        "getquestionnaire": CommandSpec({}, fixed=MappingProxyType({"stn": True})),
        "setquestionnaire": CommandSpec(
            _optional(cp.QUESTIONNAIRE_FIELDS), cross_check=cp.check_questionnaire
        ),
        # An operator's frame for a command without checks here (newer firmware); see check_raw.
        "raw": CommandSpec({}),
    }
)
DESTRUCTIVE = frozenset(name for name, spec in COMMANDS.items() if spec.destructive)


def reply_name(name: str, params: Mapping[str, object] | None) -> str:
    """The `ret` that answers a command: its own name, or a raw frame's `cmd`."""
    if name == "raw" and params is not None and isinstance(params.get("cmd"), str):
        return params["cmd"]
    return name


def encode_command(name: str, params: Mapping[str, object] | None = None) -> str:
    """Validate `params` against COMMANDS[name] and return the frame, e.g.
    '{"cmd":"getuserinfo","enrollid":1,"backupnum":0}'. Numeric strings become numbers."""
    spec = COMMANDS.get(name)
    if spec is None:
        raise ProtocolError("unknown_cmd", f"unknown terminal command {describe(name)}")
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise invalid(f"{name} parameters must be an object, got {describe(params)}")
    if name == "raw":
        frame = cp.check_raw(params)
        if json.loads(frame)["cmd"] in COMMANDS:
            raise invalid(f"raw.cmd {params['cmd']!r} is a command gatewayd knows: send it as itself")
        return frame
    unknown = [key for key in params if key not in spec.params]
    if unknown:
        allowed = ", ".join(spec.params) or "none"
        raise invalid(f"{name} does not take {describe(unknown[0])} (parameters: {allowed})")
    checked: dict = {}
    for key, param in spec.params.items():
        if params.get(key) is None:
            if param.required:
                raise ProtocolError("missing_field", f"{name} needs '{key}'")
            continue
        checked[key] = param.check(params[key], f"{name}.{key}")
    if spec.cross_check is not None:
        spec.cross_check(checked)
    return dumps_compact({"cmd": name, **checked, **spec.fixed})


@dataclass(frozen=True, slots=True)
class TerminalReply:
    name: str
    result: bool
    fields: dict


def is_reply(obj: Mapping, expected: str | None = None) -> bool:
    """Whether a frame from a terminal answers a command rather than making a request: it has
    `ret` or `result`, or (firmware quirk) a `cmd` naming a server command or the one awaited."""
    if "ret" in obj or "result" in obj:
        return True
    cmd = obj.get("cmd")
    return isinstance(cmd, str) and (cmd.strip().lower() in COMMANDS or cmd.strip().lower() == expected)


def decode_reply(obj: object, expected: str | None = None) -> TerminalReply:
    """A terminal's answer to a command. The name comes from `ret`, or from `cmd` (some firmware
    echoes that); it must be a known command or `expected` (the `cmd` of a raw frame in flight).
    `result` may be a bool, 0/1 or "true"/"false"; when absent (e.g. `gettime`) the reply counts
    as a success unless it carries a `reason`."""
    if not isinstance(obj, Mapping):
        raise invalid(f"reply must be an object, got {describe(obj)}")
    raw_name = obj.get("ret", obj.get("cmd"))
    if raw_name is None:
        raise ProtocolError("missing_field", "reply has no 'ret'")
    if not isinstance(raw_name, str):
        raise invalid(f"ret must be a string, got {describe(raw_name)}")
    name = raw_name.strip().lower()
    if name not in COMMANDS and name != expected:
        raise ProtocolError("unknown_cmd", f"reply to unknown command {describe(raw_name)}")
    fields = {key: value for key, value in obj.items() if key not in ("ret", "cmd", "result")}
    return TerminalReply(name, _reply_result(obj), fields)


def _reply_result(obj: Mapping) -> bool:
    if "result" not in obj:
        return "reason" not in obj
    value = obj["result"]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid(f"result must be true or false, got {describe(value)}")


def punches_in_reply(reply: TerminalReply) -> list[Punch]:
    """The log records of a `getnewlog` / `getalllog` page."""
    records = reply.fields.get("record")
    if records is None:
        return []
    if not isinstance(records, list):
        raise invalid(f"{reply.name}.record must be a list, got {describe(records)}")
    if len(records) > MAX_RECORDS_PER_BATCH:
        raise invalid(
            f"{reply.name}.record has {len(records)} entries, the limit is {MAX_RECORDS_PER_BATCH}"
        )
    return [parse_punch(record, f"record[{i}]") for i, record in enumerate(records)]


def page_done(reply: TerminalReply, page_count: int, cap: int) -> bool:
    """Whether to stop asking for pages after `reply`, the `page_count`-th page received.

    Stop on a failed reply, an empty or missing `record`, `count` 0, `to + 1 >= count`, or
    `page_count >= cap`; in the dialect with `page` / `pagesize`, on a short page or once
    `page_count * pagesize` reaches the whole count. `to + 1 >= count` only applies where `count` is the size of the whole
    set (the log commands): `getuserlist` reports the page's own size there, so it stops on the
    empty page that follows the last one. A `count` or `to` that is not an integer stops paging
    too: looping on garbage is worse than stopping early.
    """
    if not reply.result or page_count >= cap:
        return True
    records = reply.fields.get("record")
    if not isinstance(records, list) or not records:
        return True
    if "pagesize" in reply.fields:
        return _numbered_page_done(reply.fields, len(records), page_count)
    if "count" not in reply.fields:
        return False
    count = _int_or_none(reply.fields["count"])
    if count is None or count == 0:
        return True
    spec = COMMANDS.get(reply.name)
    if spec is not None and spec.count_is_total and "to" in reply.fields:
        last = _int_or_none(reply.fields["to"])
        if last is None or last + 1 >= count:
            return True
    return False


def _numbered_page_done(fields: dict, received: int, page_count: int) -> bool:
    """The dialect that numbers its pages (`page`, `pagesize`): a short page is the last one, and
    so is the page that reaches the whole count (`total`, or a `count` larger than the page)."""
    size = _int_or_none(fields["pagesize"])
    if size is None or size <= 0 or received < size:
        return True
    total = _int_or_none(fields.get("total", fields.get("count")))
    return total is not None and total > received and page_count * size >= total


def _int_or_none(value: object) -> int | None:
    try:
        return to_int(value, "value", -MAX_CODE, MAX_CODE)
    except ProtocolError:
        return None

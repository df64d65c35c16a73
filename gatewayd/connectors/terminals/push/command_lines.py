"""ZKTeco PUSH commands: the terminals' common command names, checked, as PUSH command lines
(`C:<id>:<line>` is built by `codec.build_commands`). Sans-IO."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .. import command_codec as tc
from .. import fields as tf
from .. import punches as tpunch
from ....errors import ProtocolError
from .codec import _BREAKS_LINE, _CONTROL, MAX_RAW_LINE_CHARS, _invalid, parse_pin


def _field_text(value: object, where: str, limit: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string, got {tf.describe(value)}")
    if _BREAKS_LINE.search(value):
        raise _invalid(f"{where} contains a tab or a line break, which would break the command line")
    if _CONTROL.search(value):
        raise _invalid(f"{where} contains control characters")
    text = value.strip()
    if len(text) > limit:
        raise _invalid(f"{where} is {len(text)} characters long, the limit is {limit}")
    return text


def _pin_param(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise _invalid(f"{where} must be an integer, got {tf.describe(value)}")
    if isinstance(value, int):
        if not 1 <= value <= tpunch.MAX_ENROLLID:
            raise _invalid(f"{where} must be between 1 and {tpunch.MAX_ENROLLID}, got {value}")
        return value
    if isinstance(value, str):
        pin = parse_pin(value, where)
        if pin < 1:
            raise _invalid(f"{where} must be between 1 and {tpunch.MAX_ENROLLID}, got {pin}")
        return pin
    raise _invalid(f"{where} must be an integer, got {tf.describe(value)}")


_ADMIN_TO_PRI = {0: 0, 1: 6, 2: 14}   # user, admin, super user


def _setuserinfo(p: dict) -> str:
    admin = p.get("admin", 0)
    if admin not in _ADMIN_TO_PRI:
        raise _invalid(f"setuserinfo.admin must be 0 (user), 1 (admin) or 2 (super user), got {tf.describe(admin)}")
    fields = [f"PIN={p['enrollid']}", f"Name={p['name']}", f"Pri={_ADMIN_TO_PRI[admin]}"]
    backupnum = p.get("backupnum")
    if backupnum is not None:
        if backupnum not in (10, 11):
            raise _invalid("on a PUSH terminal setuserinfo.backupnum may be 10 (password) or 11 (card); "
                           "templates are enrolled on the terminal")
        if p.get("record") is None:
            raise ProtocolError("missing_field", "setuserinfo with backupnum needs 'record'")
        record = _field_text(p["record"], "setuserinfo.record", 20 if backupnum == 11 else 8)
        if not record.isdigit():
            raise _invalid("setuserinfo.record must be digits (a password or a card number)")
        fields.append(f"Passwd={record}" if backupnum == 10 else f"Card={record}")
    fields += ["Grp=1", "TZ=0000000000000000"]
    return "DATA UPDATE USERINFO " + "\t".join(fields)


def _log_range(p: dict) -> str:
    start = p.get("from", "2000-01-01")
    end = p.get("to", "2099-12-31")
    if start > end:
        raise _invalid(f"getalllog.from ({start}) is after getalllog.to ({end})")
    return f"DATA QUERY ATTLOG StartTime={start} 00:00:00\tEndTime={end} 23:59:59"


def _date_param(value: object, where: str) -> str:
    text = _field_text(value, where, 10)
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise _invalid(f"{where} must be a date 'YYYY-MM-DD', got {tf.describe(text)}") from None
    return text


def _raw_line(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string, got {tf.describe(value)}")
    if "\r" in value or "\n" in value:
        raise _invalid(f"{where} contains a line break; one raw command is one line (TABs separate its fields)")
    line = value.strip()
    if not line or len(line) > MAX_RAW_LINE_CHARS:
        raise _invalid(f"{where} must be 1 to {MAX_RAW_LINE_CHARS} characters")
    if _CONTROL.search(line.replace("\t", "")):
        raise _invalid(f"{where} contains control characters")
    return line


def _backupnum(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise _invalid(f"{where} must be an integer, got {tf.describe(value)}")
    return int(str(value).strip())


def _admin(value: object, where: str) -> int:
    return _backupnum(value, where)


@dataclass(frozen=True, slots=True)
class PushCommand:
    params: Mapping[str, tuple]          # name -> (check, required)
    line: object                         # params dict -> command line


COMMANDS: Mapping[str, PushCommand] = {
    "getuserinfo": PushCommand({"enrollid": (_pin_param, True), "backupnum": (_backupnum, False)},
                               lambda p: f"DATA QUERY USERINFO PIN={p['enrollid']}"),
    "setuserinfo": PushCommand({"enrollid": (_pin_param, True),
                                "name": (lambda v, w: _field_text(v, w, tc.MAX_USER_NAME_CHARS), True),
                                "admin": (_admin, False), "backupnum": (_backupnum, False),
                                "record": (lambda v, w: v, False)}, _setuserinfo),
    "deleteuser": PushCommand({"enrollid": (_pin_param, True), "backupnum": (_backupnum, False)},
                              lambda p: f"DATA DELETE USERINFO PIN={p['enrollid']}"),
    "getalllog": PushCommand({"from": (_date_param, False), "to": (_date_param, False)}, _log_range),
    "getnewlog": PushCommand({}, lambda p: "CHECK"),
    "check": PushCommand({}, lambda p: "CHECK"),
    "cleanlog": PushCommand({}, lambda p: "CLEAR LOG"),
    "reboot": PushCommand({}, lambda p: "REBOOT"),
    "info": PushCommand({}, lambda p: "INFO"),
    "getdevinfo": PushCommand({}, lambda p: "INFO"),
    "raw": PushCommand({"line": (_raw_line, True)}, lambda p: p["line"]),
}


def check_command(name: object, params: Mapping[str, object] | None) -> dict:
    """Validated parameters of a command for a PUSH terminal (ProtocolError when refused)."""
    if not isinstance(name, str) or name not in COMMANDS:
        hint = (" (PUSH terminals set their clock from every reply's Date header)" if name == "settime" else "")
        raise ProtocolError("unknown_cmd", f"PUSH terminals do not take {tf.describe(name)}{hint}; commands: "
                                           + ", ".join(COMMANDS))
    spec = COMMANDS[name]
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise _invalid(f"{name} parameters must be an object, got {tf.describe(params)}")
    unknown = [key for key in params if key not in spec.params and key != "stn"]
    if unknown:
        raise _invalid(f"{name} does not take {tf.describe(unknown[0])} (parameters: "
                       f"{', '.join(spec.params) or 'none'})")
    checked: dict = {}
    for key, (check, required) in spec.params.items():
        if params.get(key) is None:
            if required:
                raise ProtocolError("missing_field", f"{name} needs '{key}'")
            continue
        checked[key] = check(params[key], f"{name}.{key}")
    spec.line(checked)  # the cross-field checks run here
    return checked


def command_line(name: str, params: Mapping[str, object]) -> str:
    """The PUSH line for a command whose parameters `check_command` accepted."""
    return COMMANDS[name].line(dict(params))

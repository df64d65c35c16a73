"""Parameter checks for the cmd/ret commands that carry structured settings: user names, device
parameters, door access (`setdevlock`, `setuserlock`), holidays, the questionnaire, and `raw`
frames. Each check takes (value, where) and returns the value to send, or raises "invalid" naming
the field. Limits follow the vendor's protocol text (e.g. at most 50 names, 40 user access records
or 30 holidays per command). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date

from ...errors import ProtocolError
from .fields import describe, dumps_compact, invalid, to_int, to_text

Check = Callable[[object, str], object]

MAX_RAW_BYTES = 16 * 1024
MAX_SETTING_TEXT = 64
RAW_CMD = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)
_HM = r"(?:[01]\d|2[0-3]):[0-5]\d"
_SECTION = re.compile(rf"{_HM}~(?:{_HM}|24:00)", re.ASCII)
_SCHEDULE = re.compile(rf"({_HM})-({_HM}|24:00)\*(\d{{1,2}})", re.ASCII)
_MONTH_DAY = re.compile(r"(\d{2})-(\d{2})", re.ASCII)


def int_in(low: int, high: int) -> Check:
    return lambda value, where: to_int(value, where, low, high)


def text(max_chars: int = MAX_SETTING_TEXT) -> Check:
    return lambda value, where: to_text(value, where, max_chars)


def flag(value: object, where: str) -> bool | int:
    """true/false, or 0/1 as some firmware writes them (sent as given)."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return value
    raise invalid(f"{where} must be true/false or 0/1, got {describe(value)}")


def boolean(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise invalid(f"{where} must be true or false, got {describe(value)}")


def matching(pattern: re.Pattern, example: str) -> Check:
    def check(value: object, where: str) -> str:
        found = to_text(value, where, 32)
        if not pattern.fullmatch(found):
            raise invalid(f"{where} must look like {example!r}, got {describe(found)}")
        return found

    return check


def list_of(item: Check, max_items: int, min_items: int = 0) -> Check:
    def check(value: object, where: str) -> list:
        if not isinstance(value, list):
            raise invalid(f"{where} must be a list, got {describe(value)}")
        if not min_items <= len(value) <= max_items:
            raise invalid(f"{where} must have {min_items} to {max_items} entries, got {len(value)}")
        return [item(entry, f"{where}[{i}]") for i, entry in enumerate(value)]

    return check


def obj(fields: Mapping[str, tuple[Check, bool]], at_least: int = 0) -> Check:
    """An object with these fields ((check, required) each, in wire order); unknown keys refused;
    `at_least` fields must be given."""
    def check(value: object, where: str) -> dict:
        if not isinstance(value, Mapping):
            raise invalid(f"{where} must be an object, got {describe(value)}")
        unknown = [key for key in value if key not in fields]
        if unknown:
            raise invalid(f"{where} does not take {describe(unknown[0])} (fields: {', '.join(fields)})")
        out = {}
        for key, (field_check, required) in fields.items():
            if value.get(key) is None:
                if required:
                    raise ProtocolError("missing_field", f"{where} needs '{key}'")
                continue
            out[key] = field_check(value[key], f"{where}.{key}")
        if len(out) < at_least:
            raise ProtocolError("missing_field", f"{where} needs at least one of {', '.join(fields)}")
        return out

    return check


def at_least_one(name: str) -> Callable[[dict], None]:
    def check(params: dict) -> None:
        if not params:
            raise ProtocolError("missing_field", f"{name} needs at least one setting")

    return check


def counted(name: str) -> Callable[[dict], None]:
    """`count` is the number of entries in `record`: filled in when left out, checked when given."""
    def check(params: dict) -> None:
        record = params.pop("record")
        count = params.pop("count", len(record))
        if count != len(record):
            raise invalid(f"{name}.count is {count} but record has {len(record)} entries")
        params.update(count=count, record=record)

    return check


def _month_day(value: object, where: str) -> str:
    found = to_text(value, where, 5)
    match = _MONTH_DAY.fullmatch(found)
    try:
        if match is None:
            raise ValueError
        date(2024, int(match.group(1)), int(match.group(2)))  # a leap year: 02-29 is a holiday too
    except ValueError:
        raise invalid(f"{where} must be a day 'MM-DD', got {describe(found)}") from None
    return found


def _schedule(value: object, where: str) -> str:
    found = to_text(value, where, 32)
    match = _SCHEDULE.fullmatch(found)
    if match is None or int(match.group(3)) > 16:
        raise invalid(f"{where} must look like 'HH:MM-HH:MM*N' (N the item, 0-16), got {describe(found)}")
    return found


def check_raw(params: Mapping[str, object]) -> str:
    """An operator's frame for a command gatewayd has no checks for: a JSON object whose `cmd` is a
    lower-case name; at most MAX_RAW_BYTES once encoded. Returns the frame."""
    cmd = params.get("cmd")
    if cmd is None:
        raise ProtocolError("missing_field", "raw needs 'cmd' (the command's name)")
    if not isinstance(cmd, str) or not RAW_CMD.fullmatch(cmd):
        raise invalid(f"raw.cmd must be a lower-case command name, got {describe(cmd)}")
    try:
        frame = dumps_compact({"cmd": cmd, **{k: v for k, v in params.items() if k != "cmd"}})
    except (TypeError, ValueError) as exc:
        raise invalid(f"raw frame cannot be sent as JSON: {exc}") from None
    if len(frame.encode()) > MAX_RAW_BYTES:
        raise invalid(f"raw frame is {len(frame.encode())} bytes, the limit is {MAX_RAW_BYTES}")
    return frame


def check_starts_before_ends(record: dict, where: str) -> None:
    if "starttime" in record and "endtime" in record and record["starttime"] > record["endtime"]:
        raise invalid(f"{where}.starttime is after its endtime")


USER_NAMES = list_of(obj({"enrollid": (int_in(1, 4_294_967_295), True), "name": (text(), True)}), 50, 1)

DEVINFO_FIELDS: Mapping[str, Check] = {
    "deviceid": int_in(0, 65535), "language": int_in(0, 99), "volume": int_in(0, 10),
    "screensaver": int_in(0, 255), "verifymode": int_in(0, 99), "sleep": flag, "userfpnum": int_in(1, 10),
    "loghint": int_in(0, 2**31 - 1), "reverifytime": int_in(0, 255),
}

_DAY_INDEX = int_in(0, 8)
DEVLOCK_FIELDS: Mapping[str, Check] = {
    "opendelay": int_in(0, 255), "doorsensor": int_in(0, 2), "alarmdelay": int_in(0, 255),
    "threat": int_in(0, 3), "InputAlarm": int_in(0, 2), "antpass": int_in(0, 2), "interlock": flag,
    "mutiopen": int_in(0, 4), "tryalarm": int_in(0, 10), "tamper": flag, "wgformat": int_in(0, 1),
    "wgoutput": int_in(0, 2), "cardoutput": flag,
    "dayzone": list_of(obj({"day": (list_of(obj({"section": (matching(_SECTION, "08:00~18:00"), True)}), 5, 1),
                                    True)}), 8, 1),
    "weekzone": list_of(obj({"week": (list_of(obj({"day": (_DAY_INDEX, True)}), 7, 1), True)}), 8, 1),
    "lockgroup": list_of(obj({"group": (int_in(0, 999_999_999), True)}), 5, 1),
    "nopentime": list_of(obj({"day": (_DAY_INDEX, True)}), 7, 1),
}

_LOCK_TIME = matching(re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII), "2026-01-01 00:00:00")
_USER_LOCK = obj({"enrollid": (int_in(1, 4_294_967_295), True), "weekzone": (_DAY_INDEX, False),
                  "weekzone2": (_DAY_INDEX, False), "weekzone3": (_DAY_INDEX, False),
                  "weekzone4": (_DAY_INDEX, False), "group": (int_in(0, 9), False),
                  "starttime": (_LOCK_TIME, False), "endtime": (_LOCK_TIME, False)}, at_least=2)


def _user_lock(value: object, where: str) -> dict:
    record = _USER_LOCK(value, where)
    check_starts_before_ends(record, where)
    return record


USER_LOCKS = list_of(_user_lock, 40, 1)

HOLIDAYS = list_of(obj({"name": (text(), True), "startday": (_month_day, True), "endday": (_month_day, True),
                        "shift": (int_in(0, 99), False), "dayzone": (_DAY_INDEX, False)}), 30)

QUESTIONNAIRE_FIELDS: Mapping[str, Check] = {
    "title": text(), "voice": text(), "errmsg": text(), "radio": boolean, "optionflag": int_in(0, 65535),
    "usequestion": boolean, "useschedule": boolean, "card": int_in(0, 1),
    "items": list_of(text(32), 16), "schedules": list_of(_schedule, 8),
}


def check_questionnaire(params: dict) -> None:
    if not params:
        raise ProtocolError("missing_field", "setquestionnaire needs at least one setting")
    if params.get("radio") is False and len(params.get("items", ())) > 8:
        raise invalid("setquestionnaire.items: at most 8 for multiple choice (radio false)")

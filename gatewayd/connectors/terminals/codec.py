"""Attendance terminals of the "cmd/ret" JSON family (HTTP bodies and WebSocket frames alike).

The terminal sends requests (`reg`, `sendlog`, `checklive`) and gets replies built with
`encode_reply` / `encode_failure`. The server sends commands (`encode_command`) and reads the
terminal's replies (`decode_reply`); replies carry no id and match the command by name.

Bad input raises `ProtocolError` with one of these codes: "too_large", "bad_json",
"unknown_cmd", "missing_field", "invalid". `missing_field` is for the top-level fields of a
message (and required command parameters); anything wrong inside a log record is "invalid".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from ...errors import ProtocolError

MAX_SN_CHARS = 64
MAX_CPUSN_CHARS = 64
MAX_TIME_TEXT_CHARS = 64
MAX_DEVINFO_TEXT_CHARS = 128
MAX_RECORDS_PER_BATCH = 1000
MAX_IMAGE_CHARS = 512 * 1024  # base64 punch photo
MAX_ENROLLID = 4_294_967_295
MAX_CODE = 2**31 - 1  # mode, inout, event, verifymode, count, logindex
MAX_USER_NAME_CHARS = 64
MAX_TEMPLATE_CHARS = 4096  # fingerprint / face / palm template
MAX_PASSWORD = 99_999_999  # terminals take at most 8 digits
MAX_CARD = 2**63 - 1
MAX_DOOR = 4

REQUESTS = ("reg", "sendlog", "checklive")

# Code tables. What mode / inout / event mean varies by firmware, so records keep the raw
# numbers; these tables name codes for display and validate what is sent to a terminal.
BACKUPNUM: Mapping[int, str] = MappingProxyType(
    {
        **{n: f"fingerprint {n}" for n in range(10)},
        10: "password",
        11: "card",
        **{n: f"face {n - 20}" for n in range(20, 28)},
        **{n: f"palm {n - 30}" for n in range(30, 38)},
        50: "photo",
    }
)
DELETE_BACKUPNUM: Mapping[int, str] = MappingProxyType(
    {**BACKUPNUM, 12: "all fingerprints", 13: "all credentials and the name"}
)
ADMIN: Mapping[int, str] = MappingProxyType({0: "user", 1: "admin", 2: "super user"})
INOUT: Mapping[int, str] = MappingProxyType({0: "in", 1: "out"})
# Names shown for punch codes unless `terminals.codes` names them otherwise (per model or "default").
# The meanings most firmware of this family uses; other firmware differs, hence the setting.
MODE: Mapping[int, str] = MappingProxyType({1: "fingerprint", 2: "password", 3: "card", 8: "face"})
EVENT: Mapping[int, str] = MappingProxyType({0: "normal"})
DEFAULT_CODE_NAMES: Mapping[str, Mapping[int, str]] = MappingProxyType({"mode": MODE, "inout": INOUT, "event": EVENT})
ENFLAG: Mapping[int, str] = MappingProxyType({0: "disabled", 1: "enabled"})
DOOR_EVENT_ENROLLID = 0  # a record with enrollid 0 is a door / system event, not a person

# Informational `reg` fields, nested in `devinfo` or (some firmware) flat in the message.
DEVINFO_COUNT_FIELDS = (
    "usersize", "fpsize", "cardsize", "pwdsize", "logsize",
    "useduser", "usedfp", "usedcard", "usedpwd", "usedlog", "usednewlog",
)
DEVINFO_TEXT_FIELDS = ("modelname", "fpalgo", "firmware", "time", "mac")

_INT_TEXT = re.compile(r"[+-]?\d{1,19}", re.ASCII)
_FLOAT_TEXT = re.compile(
    r"[+-]?(?:\d{1,20}(?:\.\d{0,20})?|\.\d{1,20})(?:[eE][+-]?\d{1,3})?", re.ASCII
)
_LOCAL_TIME = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?", re.ASCII
)
_CLOUDTIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
_SN = re.compile(r"[ -~]+", re.ASCII)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# A complete (or unterminated) JSON string, or a comma that only precedes a closing bracket.
# Strings are matched so commas inside them survive; possessive quantifiers keep it linear.
_STRING_OR_TRAILING_COMMA = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)|,(?=\s*[\]}])', re.DOTALL)


def describe(value: object) -> str:
    """A short, bounded rendering of an offending value for error messages."""
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**30 else "a very large integer"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid", message)


# --------------------------------------------------------------------------------------------
# Lenient JSON


def loads_lenient(data: str | bytes, max_bytes: int) -> dict:
    """Parse one JSON object the way terminal firmware writes it.

    Tolerated: a UTF-8 BOM, trailing commas before `]` or `}`, spaces around keys and string
    values (stripped; also strings directly inside arrays). Refused: more than `max_bytes` bytes
    of UTF-8 ("too_large"); non-UTF-8 bytes, anything but a JSON object, NaN / Infinity, numbers
    out of range, nesting deeper than the interpreter's recursion limit ("bad_json").
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        _check_size(len(raw), max_bytes)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                "bad_json", f"message is not UTF-8: {exc.reason} at byte {exc.start}"
            ) from None
    elif isinstance(data, str):
        if 4 * len(data) > max_bytes:  # a character is at most 4 bytes: else it surely fits
            _check_size(len(data.encode("utf-8", "surrogatepass")), max_bytes)
        text = data.removeprefix("\ufeff")
    else:
        raise ProtocolError("bad_json", f"message must be text or bytes, got {describe(data)}")

    try:
        value = _loads(text)
    except json.JSONDecodeError:
        try:
            value = _loads(_drop_trailing_commas(text))
        except json.JSONDecodeError as exc:
            raise ProtocolError(
                "bad_json", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    if not isinstance(value, dict):
        raise ProtocolError("bad_json", f"message must be a JSON object, got {describe(value)}")
    return value


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ProtocolError("too_large", f"message is {size} bytes, the limit is {max_bytes}")


def _drop_trailing_commas(text: str) -> str:
    return _STRING_OR_TRAILING_COMMA.sub(lambda m: "" if m.group(0) == "," else m.group(0), text)


def _loads(text: str) -> object:
    """json.loads with the stripping hooks. Lets JSONDecodeError through so the caller can retry."""
    try:
        return _LENIENT_DECODER.decode(text)
    except (ProtocolError, json.JSONDecodeError):
        raise
    except RecursionError:
        raise ProtocolError("bad_json", "JSON is nested too deeply") from None
    except ValueError as exc:  # an integer with more digits than Python will convert
        raise ProtocolError("bad_json", f"not valid JSON: {exc}") from None


def _stripped_object(pairs: list[tuple[str, object]]) -> dict:
    return {key.strip(): _stripped(value) for key, value in pairs}


def _stripped(value: object) -> object:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [item.strip() if isinstance(item, str) else item for item in value]
    return value


def _refuse_constant(name: str) -> float:
    raise ProtocolError("bad_json", f"{name} is not a valid JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ProtocolError("bad_json", f"number {text[:40]} is out of range")
    return number


# Built once: json.loads with hooks would build a new decoder and scanner on every call.
_LENIENT_DECODER = json.JSONDecoder(
    object_pairs_hook=_stripped_object, parse_constant=_refuse_constant, parse_float=_finite_float
)


# --------------------------------------------------------------------------------------------
# Field coercion: terminals send numbers as numbers or as numeric strings.


def _to_int(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _invalid(f"{where} must be an integer, got {describe(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise _invalid(f"{where} must be an integer, got {describe(value)}")
    if not low <= number <= high:
        raise _invalid(f"{where} must be between {low} and {high}, got {describe(number)}")
    return number


def _to_float(value: object, where: str) -> float:
    if isinstance(value, bool):
        raise _invalid(f"{where} must be a number, got {describe(value)}")
    if isinstance(value, int):
        number = float(value) if abs(value) < 10**30 else math.inf
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise _invalid(f"{where} must be a number, got {describe(value)}")
    if not math.isfinite(number):
        raise _invalid(f"{where} must be a finite number, got {describe(value)}")
    return number


def _to_text(value: object, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string, got {describe(value)}")
    text = value.strip()
    if len(text) > max_chars:
        raise _invalid(f"{where} is {len(text)} characters long, the limit is {max_chars}")
    if _CONTROL_CHARS.search(text):
        raise _invalid(f"{where} contains control characters or invalid code points")
    return text


def parse_local_time(text: str, where: str = "time") -> datetime:
    """Terminal wall-clock time without a zone: 'YYYY-MM-DD HH:MM:SS' or with 'T', with up to
    six fractional digits (what Python's isoformat() writes). Returns a naive datetime."""
    match = _LOCAL_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise _invalid(
            f"{where} must look like 'YYYY-MM-DD HH:MM:SS' (local time, no zone), "
            f"got {describe(text)}"
        )
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError as exc:
        raise _invalid(f"{where} is not a real date and time: {describe(text)} ({exc})") from None


# --------------------------------------------------------------------------------------------
# Punches


@dataclass(frozen=True, slots=True)
class Punch:
    """One attendance / access record. `time` is kept as received (stripped); `local_time` is the
    same instant read as the terminal's naive wall clock."""

    enrollid: int
    time: str
    local_time: datetime
    mode: int = 0
    inout: int = 0
    event: int = 0
    temp: float | None = None
    verifymode: int | None = None
    image: str | None = None


def parse_punch(record: object, where: str = "record") -> Punch:
    """One record of `sendlog` / `getnewlog` / `getalllog` (or the device dialects' attendance).

    `enrollid` and `time` are required; `mode`, `inout`, `event` default to 0 (the seed's own
    example omits `event`). `temp` above 100 is in hundredths of a degree. An empty `image` is
    treated as absent."""
    if not isinstance(record, Mapping):
        raise _invalid(f"{where} must be an object, got {describe(record)}")
    for name in ("enrollid", "time"):
        if record.get(name) is None:
            raise _invalid(f"{where} has no '{name}'")
    enrollid = _to_int(record["enrollid"], f"{where}.enrollid", 0, MAX_ENROLLID)
    time_text = _to_text(record["time"], f"{where}.time", MAX_TIME_TEXT_CHARS)
    local_time = parse_local_time(time_text, f"{where}.time")

    def code(name: str, default: int | None) -> int | None:
        value = record.get(name)
        return default if value is None else _to_int(value, f"{where}.{name}", 0, MAX_CODE)

    temp = None
    if record.get("temp") is not None:
        temp = _to_float(record["temp"], f"{where}.temp")
        if temp > 100:
            temp = temp / 100
    image = None
    if record.get("image") is not None:
        image = _to_text(record["image"], f"{where}.image", MAX_IMAGE_CHARS) or None
    return Punch(
        enrollid=enrollid,
        time=time_text,
        local_time=local_time,
        mode=code("mode", 0),
        inout=code("inout", 0),
        event=code("event", 0),
        temp=temp,
        verifymode=code("verifymode", None),
        image=image,
    )


def punch_to_record(punch: Punch) -> dict:
    """The wire form of a punch (optional fields only when set)."""
    record: dict = {
        "enrollid": punch.enrollid,
        "time": punch.time,
        "mode": punch.mode,
        "inout": punch.inout,
        "event": punch.event,
    }
    for name in ("temp", "verifymode", "image"):
        value = getattr(punch, name)
        if value is not None:
            record[name] = value
    return record


def dedup_key(sn: str, punch: Punch) -> tuple[str, int, str, int, int]:
    """(sn, enrollid, time, inout, event) with the time normalised, so a resend that writes the
    same instant as '...T09:15:30' instead of '... 09:15:30' is still the same punch."""
    return (sn, punch.enrollid, punch.local_time.isoformat(sep=" "), punch.inout, punch.event)


# --------------------------------------------------------------------------------------------
# Requests from the terminal


@dataclass(frozen=True, slots=True)
class TerminalReg:
    sn: str
    cpusn: str | None
    devinfo: dict


@dataclass(frozen=True, slots=True)
class SendLog:
    """`count` and `logindex` are what the terminal sent (`count` defaults to the number of
    records); a `count` that differs from len(records) is tolerated: the records are what gets
    stored, and the reply echoes `count` / `logindex` as sent so the terminal advances."""

    sn: str
    count: int
    logindex: int | None
    records: list[Punch]


@dataclass(frozen=True, slots=True)
class CheckLive:
    sn: str
    time: str | None


TerminalRequest = TerminalReg | SendLog | CheckLive


def decode_request(obj: object) -> TerminalRequest:
    """A parsed request body / frame (see `loads_lenient`) -> typed request."""
    if not isinstance(obj, Mapping):
        raise _invalid(f"request must be an object, got {describe(obj)}")
    if obj.get("cmd") is None:
        raise ProtocolError("missing_field", "request has no 'cmd'")
    cmd = obj["cmd"]
    if not isinstance(cmd, str):
        raise _invalid(f"cmd must be a string, got {describe(cmd)}")
    name = cmd.strip().lower()
    if name not in REQUESTS:
        raise ProtocolError(
            "unknown_cmd", f"unknown cmd {describe(cmd)}; a terminal may send {', '.join(REQUESTS)}"
        )
    sn = _parse_sn(obj)
    if name == "reg":
        return _decode_reg(obj, sn)
    if name == "sendlog":
        return _decode_sendlog(obj, sn)
    time = obj.get("time")
    if time is not None:
        time = _to_text(time, "checklive.time", MAX_TIME_TEXT_CHARS)
    return CheckLive(sn, time)


def _parse_sn(obj: Mapping) -> str:
    value = obj.get("sn")
    if value is None:
        raise ProtocolError("missing_field", "request has no 'sn'")
    if not isinstance(value, str):
        raise _invalid(f"sn must be a string, got {describe(value)}")
    sn = value.strip()
    if not sn:
        raise _invalid("sn is empty")
    if len(sn) > MAX_SN_CHARS:
        raise _invalid(f"sn is {len(sn)} characters long, the limit is {MAX_SN_CHARS}")
    if not _SN.fullmatch(sn):
        raise _invalid(f"sn must be printable ASCII, got {describe(sn)}")
    return sn


def _decode_reg(obj: Mapping, sn: str) -> TerminalReg:
    cpusn = obj.get("cpusn")
    if isinstance(cpusn, int) and not isinstance(cpusn, bool):
        cpusn = str(cpusn)
    if cpusn is not None:
        cpusn = _to_text(cpusn, "reg.cpusn", MAX_CPUSN_CHARS) or None
    nested = obj.get("devinfo")
    if nested is None:
        nested = {}
    elif not isinstance(nested, Mapping):
        raise _invalid(f"reg.devinfo must be an object, got {describe(nested)}")
    return TerminalReg(sn, cpusn, _collect_devinfo(nested, obj))


def _collect_devinfo(nested: Mapping, flat: Mapping) -> dict:
    """Known devinfo fields from `devinfo`, else from the top level. The fields are informational,
    so a value of the wrong shape is dropped instead of refusing the registration."""
    devinfo: dict = {}
    for name in DEVINFO_COUNT_FIELDS + DEVINFO_TEXT_FIELDS:
        value = nested.get(name, flat.get(name))
        if value is None:
            continue
        try:
            if name in DEVINFO_COUNT_FIELDS:
                devinfo[name] = _to_int(value, name, 0, 2**63 - 1)
            elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
                devinfo[name] = str(value)
            elif isinstance(value, float) and math.isfinite(value):
                devinfo[name] = repr(value)
            else:
                devinfo[name] = _to_text(value, name, MAX_DEVINFO_TEXT_CHARS)
        except ProtocolError:
            continue
    return devinfo


def _decode_sendlog(obj: Mapping, sn: str) -> SendLog:
    records = obj.get("record")
    if records is None:
        raise ProtocolError("missing_field", "sendlog has no 'record'")
    if not isinstance(records, list):
        raise _invalid(f"sendlog.record must be a list, got {describe(records)}")
    if len(records) > MAX_RECORDS_PER_BATCH:
        raise _invalid(
            f"sendlog.record has {len(records)} entries, the limit is {MAX_RECORDS_PER_BATCH}"
        )
    punches = [parse_punch(record, f"record[{i}]") for i, record in enumerate(records)]
    count = obj.get("count")
    count = len(punches) if count is None else _to_int(count, "sendlog.count", 0, MAX_CODE)
    logindex = obj.get("logindex")
    if logindex is not None:
        logindex = _to_int(logindex, "sendlog.logindex", 0, MAX_CODE)
    return SendLog(sn, count, logindex, punches)


# --------------------------------------------------------------------------------------------
# Replies to the terminal


# Built once: json.dumps with options builds a new encoder on every call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps_compact(obj: object) -> str:
    """Compact JSON text (UTF-8 characters as they are, no NaN) for replies on the wire."""
    return _COMPACT_JSON.encode(obj)



def encode_reply(ret: str, result: bool, **fields: object) -> str:
    """`{"ret":..,"result":..,<fields>}`; fields whose value is None are left out."""
    body: dict = {"ret": ret, "result": result}
    body.update((key, value) for key, value in fields.items() if value is not None)
    return dumps_compact(body)


def encode_failure(ret: str, reason: str) -> str:
    """A refusal the terminal shows on its screen; sent with HTTP 200."""
    return dumps_compact({"ret": ret, "result": False, "reason": reason})


def format_cloudtime(
    now_utc: datetime, style: Literal["iso", "local"] = "iso", tz: ZoneInfo | None = None
) -> str:
    """'2026-06-12T10:00:00Z' (iso, the default) or the terminal's wall clock in `tz`
    ('2026-06-12 12:00:00', local). Seconds precision."""
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be timezone-aware")
    if style == "iso":
        return now_utc.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "local":
        if tz is None:
            raise ValueError("the local cloudtime style needs the terminal's time zone")
        return now_utc.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    raise ValueError(f"unknown cloudtime style {style!r}; use 'iso' or 'local'")


# --------------------------------------------------------------------------------------------
# Commands to the terminal


def _check_stn(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(
            f"{where} must be true (first page) or false (next page), got {describe(value)}"
        )
    return value


def _check_enrollid(value: object, where: str) -> int:
    return _to_int(value, where, 1, MAX_ENROLLID)


def _code_checker(table: Mapping[int, str]) -> Callable[[object, str], int]:
    def check(value: object, where: str) -> int:
        number = _to_int(value, where, 0, MAX_CODE)
        if number not in table:
            allowed = ", ".join(str(code) for code in table)
            raise _invalid(f"{where} must be one of {allowed}; got {number}")
        return number

    return check


def _check_name(value: object, where: str) -> str:
    return _to_text(value, where, MAX_USER_NAME_CHARS)


def _check_credential(value: object, where: str) -> int | str:
    # Its real type depends on backupnum; `_check_user_record` finishes the job.
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return value
    raise _invalid(f"{where} must be a string or an integer, got {describe(value)}")


def _check_door(value: object, where: str) -> int:
    return _to_int(value, where, 1, MAX_DOOR)


def _check_cloudtime(value: object, where: str) -> str:
    text = _to_text(value, where, MAX_TIME_TEXT_CHARS)
    try:
        if not _CLOUDTIME.fullmatch(text):
            raise ValueError
        datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise _invalid(f"{where} must be 'YYYY-MM-DD HH:MM:SS', got {describe(text)}") from None
    return text


def _parse_date(text: str) -> date | None:
    match = _DATE.fullmatch(text)
    try:
        return date(*(int(part) for part in match.groups())) if match else None
    except ValueError:
        return None


def _check_date(value: object, where: str) -> str:
    text = _to_text(value, where, MAX_TIME_TEXT_CHARS)
    if _parse_date(text) is None:
        raise _invalid(f"{where} must be a date 'YYYY-MM-DD', got {describe(text)}")
    return text


def _check_user_record(params: dict) -> None:
    backupnum, record = params["backupnum"], params["record"]
    where = "setuserinfo.record"
    if backupnum == 10:
        params["record"] = _to_int(record, f"{where} (password)", 0, MAX_PASSWORD)
    elif backupnum == 11:
        params["record"] = _to_int(record, f"{where} (card number)", 0, MAX_CARD)
    else:
        limit = MAX_IMAGE_CHARS if backupnum == 50 else MAX_TEMPLATE_CHARS
        text = _to_text(record, f"{where} ({BACKUPNUM[backupnum]})", limit)
        if not text:
            raise _invalid(f"{where} is empty")
        params["record"] = text


def _check_log_range(params: dict) -> None:
    if "from" in params and "to" in params:
        if _parse_date(params["from"]) > _parse_date(params["to"]):
            raise _invalid(
                f"getalllog.from ({params['from']}) is after getalllog.to ({params['to']})"
            )


@dataclass(frozen=True, slots=True)
class Param:
    check: Callable[[object, str], object]
    required: bool = True


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """`params` in wire order. `paged`: answered page by page (`stn`). `count_is_total`: the
    reply's `count` is the size of the whole set rather than of the page."""

    params: Mapping[str, Param]
    expects_reply: bool = True
    paged: bool = False
    count_is_total: bool = False
    cross_check: Callable[[dict], None] | None = None


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
        "cleanlog": CommandSpec({}),
        "settime": CommandSpec({"cloudtime": Param(_check_cloudtime)}),
        "gettime": CommandSpec({}),
        "opendoor": CommandSpec({"doornum": Param(_check_door, False)}),
        "reboot": CommandSpec({}, expects_reply=False),
        "getdevinfo": CommandSpec({}),
        "enableuser": CommandSpec({"enrollid": _ENROLLID, "enflag": Param(_code_checker(ENFLAG))}),
    }
)


def encode_command(name: str, params: Mapping[str, object] | None = None) -> str:
    """Validate `params` against COMMANDS[name] and return the frame, e.g.
    '{"cmd":"getuserinfo","enrollid":1,"backupnum":0}'. Numeric strings become numbers."""
    spec = COMMANDS.get(name)
    if spec is None:
        raise ProtocolError("unknown_cmd", f"unknown terminal command {describe(name)}")
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise _invalid(f"{name} parameters must be an object, got {describe(params)}")
    unknown = [key for key in params if key not in spec.params]
    if unknown:
        allowed = ", ".join(spec.params) or "none"
        raise _invalid(f"{name} does not take {describe(unknown[0])} (parameters: {allowed})")
    checked: dict = {}
    for key, param in spec.params.items():
        if params.get(key) is None:
            if param.required:
                raise ProtocolError("missing_field", f"{name} needs '{key}'")
            continue
        checked[key] = param.check(params[key], f"{name}.{key}")
    if spec.cross_check is not None:
        spec.cross_check(checked)
    return dumps_compact({"cmd": name, **checked})


@dataclass(frozen=True, slots=True)
class TerminalReply:
    name: str
    result: bool
    fields: dict


def is_reply(obj: Mapping) -> bool:
    """Whether a frame from a terminal answers a command rather than making a request: it has
    `ret` or `result`, or (firmware quirk) a `cmd` naming a server command."""
    if "ret" in obj or "result" in obj:
        return True
    cmd = obj.get("cmd")
    return isinstance(cmd, str) and cmd.strip().lower() in COMMANDS


def decode_reply(obj: object) -> TerminalReply:
    """A terminal's answer to a command. The name comes from `ret`, or from `cmd` (some firmware
    echoes that). `result` may be a bool, 0/1 or "true"/"false"; when absent (e.g. `gettime`) the
    reply counts as a success unless it carries a `reason`."""
    if not isinstance(obj, Mapping):
        raise _invalid(f"reply must be an object, got {describe(obj)}")
    raw_name = obj.get("ret", obj.get("cmd"))
    if raw_name is None:
        raise ProtocolError("missing_field", "reply has no 'ret'")
    if not isinstance(raw_name, str):
        raise _invalid(f"ret must be a string, got {describe(raw_name)}")
    name = raw_name.strip().lower()
    if name not in COMMANDS:
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
    raise _invalid(f"result must be true or false, got {describe(value)}")


def punches_in_reply(reply: TerminalReply) -> list[Punch]:
    """The log records of a `getnewlog` / `getalllog` page."""
    records = reply.fields.get("record")
    if records is None:
        return []
    if not isinstance(records, list):
        raise _invalid(f"{reply.name}.record must be a list, got {describe(records)}")
    if len(records) > MAX_RECORDS_PER_BATCH:
        raise _invalid(
            f"{reply.name}.record has {len(records)} entries, the limit is {MAX_RECORDS_PER_BATCH}"
        )
    return [parse_punch(record, f"record[{i}]") for i, record in enumerate(records)]


def page_done(reply: TerminalReply, page_count: int, cap: int) -> bool:
    """Whether to stop asking for pages after `reply`, the `page_count`-th page received.

    Stop on a failed reply, an empty or missing `record`, `count` 0, `to + 1 >= count`, or
    `page_count >= cap`. `to + 1 >= count` only applies where `count` is the size of the whole
    set (the log commands): `getuserlist` reports the page's own size there, so it stops on the
    empty page that follows the last one. A `count` or `to` that is not an integer stops paging
    too: looping on garbage is worse than stopping early.
    """
    if not reply.result or page_count >= cap:
        return True
    records = reply.fields.get("record")
    if not isinstance(records, list) or not records:
        return True
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


def _int_or_none(value: object) -> int | None:
    try:
        return _to_int(value, "value", -MAX_CODE, MAX_CODE)
    except ProtocolError:
        return None

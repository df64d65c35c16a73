"""Attendance terminals of the "cmd/ret" JSON family (HTTP bodies and WebSocket frames alike).

The terminal sends requests (`reg`, `sendlog`, `checklive`, `sendqrcode`, `senduser`) and gets
replies built with `encode_reply` / `encode_failure`. The server sends commands (`encode_command`)
and reads the terminal's replies (`decode_reply`); replies carry no id and match the command by
name.

Bad input raises `ProtocolError` with one of these codes: "too_large", "bad_json",
"unknown_cmd", "missing_field", "invalid". `missing_field` is for the top-level fields of a
message (and required command parameters); anything wrong inside a log record is "invalid".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from ...errors import ProtocolError
from .fields import MAX_TIME_TEXT_CHARS, describe, dumps_compact, invalid, to_int, to_text
from .punches import MAX_CODE, MAX_RECORDS_PER_BATCH, Punch, parse_punch
from .user_codec import SendUser, decode_senduser

MAX_SN_CHARS = 64
MAX_CPUSN_CHARS = 64
MAX_DEVINFO_TEXT_CHARS = 128
REQUESTS = ("reg", "sendlog", "checklive", "sendqrcode", "senduser")
MAX_QRCODE_CHARS = 1024

# Informational `reg` fields, nested in `devinfo` or (some firmware) flat in the message.
DEVINFO_COUNT_FIELDS = (
    "usersize", "fpsize", "cardsize", "pwdsize", "logsize",
    "useduser", "usedfp", "usedcard", "usedpwd", "usedlog", "usednewlog",
)
DEVINFO_TEXT_FIELDS = ("modelname", "fpalgo", "firmware", "time", "mac")

_SN = re.compile(r"[ -~]+", re.ASCII)


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


@dataclass(frozen=True, slots=True)
class SendQrCode:
    """A QR code the terminal read (`record`, or `qrcode` in some firmware)."""

    sn: str
    code: str


TerminalRequest = TerminalReg | SendLog | CheckLive | SendQrCode | SendUser


def decode_request(obj: object) -> TerminalRequest:
    """A parsed request body / frame (see `loads_lenient`) -> typed request."""
    if not isinstance(obj, Mapping):
        raise invalid(f"request must be an object, got {describe(obj)}")
    if obj.get("cmd") is None:
        raise ProtocolError("missing_field", "request has no 'cmd'")
    cmd = obj["cmd"]
    if not isinstance(cmd, str):
        raise invalid(f"cmd must be a string, got {describe(cmd)}")
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
    if name == "senduser":
        return decode_senduser(obj, sn)
    if name == "sendqrcode":
        code = obj.get("record", obj.get("qrcode"))
        if code is None:
            raise ProtocolError("missing_field", "sendqrcode has no 'record'")
        code = to_text(code, "sendqrcode.record", MAX_QRCODE_CHARS)
        if not code:
            raise invalid("sendqrcode.record is empty")
        return SendQrCode(sn, code)
    time = obj.get("time")
    if time is not None:
        time = to_text(time, "checklive.time", MAX_TIME_TEXT_CHARS)
    return CheckLive(sn, time)


def request_name(req: TerminalRequest) -> str:
    """The `ret` a reply to this request carries."""
    return {TerminalReg: "reg", SendLog: "sendlog", CheckLive: "checklive", SendQrCode: "sendqrcode",
            SendUser: "senduser"}[type(req)]


def _parse_sn(obj: Mapping) -> str:
    value = obj.get("sn")
    if value is None:
        raise ProtocolError("missing_field", "request has no 'sn'")
    if not isinstance(value, str):
        raise invalid(f"sn must be a string, got {describe(value)}")
    sn = value.strip()
    if not sn:
        raise invalid("sn is empty")
    if len(sn) > MAX_SN_CHARS:
        raise invalid(f"sn is {len(sn)} characters long, the limit is {MAX_SN_CHARS}")
    if not _SN.fullmatch(sn):
        raise invalid(f"sn must be printable ASCII, got {describe(sn)}")
    return sn


def _decode_reg(obj: Mapping, sn: str) -> TerminalReg:
    cpusn = obj.get("cpusn")
    if isinstance(cpusn, int) and not isinstance(cpusn, bool):
        cpusn = str(cpusn)
    if cpusn is not None:
        cpusn = to_text(cpusn, "reg.cpusn", MAX_CPUSN_CHARS) or None
    nested = obj.get("devinfo")
    if nested is None:
        nested = {}
    elif not isinstance(nested, Mapping):
        raise invalid(f"reg.devinfo must be an object, got {describe(nested)}")
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
                devinfo[name] = to_int(value, name, 0, 2**63 - 1)
            elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
                devinfo[name] = str(value)
            elif isinstance(value, float) and math.isfinite(value):
                devinfo[name] = repr(value)
            else:
                devinfo[name] = to_text(value, name, MAX_DEVINFO_TEXT_CHARS)
        except ProtocolError:
            continue
    return devinfo


def _decode_sendlog(obj: Mapping, sn: str) -> SendLog:
    records = obj.get("record")
    if records is None:
        raise ProtocolError("missing_field", "sendlog has no 'record'")
    if not isinstance(records, list):
        raise invalid(f"sendlog.record must be a list, got {describe(records)}")
    if len(records) > MAX_RECORDS_PER_BATCH:
        raise invalid(
            f"sendlog.record has {len(records)} entries, the limit is {MAX_RECORDS_PER_BATCH}"
        )
    punches = [parse_punch(record, f"record[{i}]") for i, record in enumerate(records)]
    count = obj.get("count")
    count = len(punches) if count is None else to_int(count, "sendlog.count", 0, MAX_CODE)
    logindex = obj.get("logindex")
    if logindex is not None:
        logindex = to_int(logindex, "sendlog.logindex", 0, MAX_CODE)
    return SendLog(sn, count, logindex, punches)


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

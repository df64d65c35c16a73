"""Messages of the device WebSocket, independent of the dialect (JSON or XML) that carries them.

Each message validates itself on construction and raises `ProtocolError("invalid", ...)`, so a
decoder only has to pick the fields out of its own syntax.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import ClassVar

from .errors import ProtocolError
from .terminal import MAX_RECORDS_PER_BATCH, Punch, describe

MAX_DOCUMENT_CHARS = 1024 * 1024  # one frame, either dialect
MAX_DEPTH = 16  # nested objects / lists in a payload; the payload itself is level 1
MAX_KEYS = 256  # per object
MAX_NODES = 10_000  # values in a whole payload
MAX_KEY_CHARS = 128
MAX_DEVICE_ID_CHARS = 64
MAX_TOKEN_CHARS = 128
MAX_NAME_CHARS = 64  # event and command names
MAX_MSG_ID_CHARS = 64  # message and command ids
MAX_TS_CHARS = 64
MAX_ERROR_TEXT_CHARS = 1024
MIN_INT, MAX_INT = -(2**63), 2**63 - 1

_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*", re.ASCII)
_TOKEN = re.compile(r"[!-~]+", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*", re.ASCII)
_MSG_ID = re.compile(r"[!-~]+", re.ASCII)
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]*", re.ASCII)
_BAD_CODE_POINTS = re.compile(r"[\ud800-\udfff]")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid", message)


def _check_pattern(value: object, where: str, pattern: re.Pattern, max_chars: int, charset: str) -> None:
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string, got {describe(value)}")
    if not value:
        raise _invalid(f"{where} is empty")
    if len(value) > max_chars:
        raise _invalid(f"{where} is {len(value)} characters long, the limit is {max_chars}")
    if not pattern.fullmatch(value):
        raise _invalid(f"{where} may only contain {charset}, got {describe(value)}")


def _check_text(value: object, where: str, max_chars: float, *, printable: bool) -> None:
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string, got {describe(value)}")
    if len(value) > max_chars:
        raise _invalid(f"{where} is {len(value)} characters long, the limit is {max_chars}")
    if (_CONTROL_CHARS if printable else _BAD_CODE_POINTS).search(value):
        raise _invalid(f"{where} contains control characters or invalid code points")


def check_msg_id(value: object, where: str) -> None:
    """A message id is a string of visible ASCII (<= 64 chars) or a 64-bit integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not MIN_INT <= value <= MAX_INT:
            raise _invalid(f"{where} is outside the 64-bit integer range")
        return
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string or an integer, got {describe(value)}")
    _check_pattern(value, where, _MSG_ID, MAX_MSG_ID_CHARS, "visible ASCII characters")


def check_payload(payload: object, where: str) -> None:
    """A JSON-compatible object within the depth, key and size limits. Walks iteratively."""
    if not isinstance(payload, dict):
        raise _invalid(f"{where} must be an object, got {describe(payload)}")
    stack: list[tuple[object, int, str]] = [(payload, 1, where)]
    nodes = 0
    while stack:
        value, depth, path = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise _invalid(f"{where} has more than {MAX_NODES} values")
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise _invalid(f"{path}: nesting deeper than {MAX_DEPTH} levels")
            if isinstance(value, dict):
                if len(value) > MAX_KEYS:
                    raise _invalid(f"{path} has {len(value)} keys, the limit is {MAX_KEYS}")
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise _invalid(f"{path}: keys must be strings, got {describe(key)}")
                    if not key or len(key) > MAX_KEY_CHARS:
                        raise _invalid(f"{path}: keys must be 1-{MAX_KEY_CHARS} characters, got {describe(key)}")
                    if _BAD_CODE_POINTS.search(key):
                        raise _invalid(f"{path}: key {describe(key)} contains invalid code points")
                    stack.append((item, depth + 1, f"{path}.{key}"))
            else:
                stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            if _BAD_CODE_POINTS.search(value):
                raise _invalid(f"{path} contains invalid code points (lone surrogates)")
        elif value is None or isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if not MIN_INT <= value <= MAX_INT:
                raise _invalid(f"{path} is outside the 64-bit integer range")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _invalid(f"{path} must be a finite number")
        else:
            raise _invalid(f"{path} has unsupported type {type(value).__name__}")


def _check_optional_id(value: object, where: str) -> None:
    if value is not None:
        check_msg_id(value, where)


def _check_optional_ts(value: object, where: str) -> None:
    if value is not None:
        _check_text(value, where, MAX_TS_CHARS, printable=True)


# --------------------------------------------------------------------------------------------
# Device -> server


@dataclass(frozen=True, slots=True)
class Register:
    kind: ClassVar[str] = "register"
    device_id: str
    token: str

    def __post_init__(self) -> None:
        _check_pattern(self.device_id, "register: device_id", _DEVICE_ID, MAX_DEVICE_ID_CHARS,
                       "letters, digits and . _ : - (not first)")
        _check_pattern(self.token, "register: token", _TOKEN, MAX_TOKEN_CHARS, "visible ASCII characters")


@dataclass(frozen=True, slots=True)
class Telemetry:
    kind: ClassVar[str] = "telemetry"
    payload: dict
    ts: str | None = None
    msg_id: str | int | None = None

    def __post_init__(self) -> None:
        check_payload(self.payload, "telemetry: payload")
        _check_optional_ts(self.ts, "telemetry: ts")
        _check_optional_id(self.msg_id, "telemetry: id")


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"
    event: str
    payload: dict = field(default_factory=dict)
    ts: str | None = None
    msg_id: str | int | None = None

    def __post_init__(self) -> None:
        _check_pattern(self.event, "event: event name", _NAME, MAX_NAME_CHARS,
                       "letters, digits and _ . : - (not first)")
        check_payload(self.payload, "event: payload")
        _check_optional_ts(self.ts, "event: ts")
        _check_optional_id(self.msg_id, "event: id")


@dataclass(frozen=True, slots=True)
class Attendance:
    kind: ClassVar[str] = "attendance"
    records: list[Punch]
    msg_id: str | int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.records, list) or not all(isinstance(r, Punch) for r in self.records):
            raise _invalid("attendance: records must be a list of punches")
        if len(self.records) > MAX_RECORDS_PER_BATCH:
            raise _invalid(
                f"attendance: {len(self.records)} records, the limit is {MAX_RECORDS_PER_BATCH}"
            )
        _check_optional_id(self.msg_id, "attendance: id")


@dataclass(frozen=True, slots=True)
class Ping:
    kind: ClassVar[str] = "ping"


@dataclass(frozen=True, slots=True)
class CommandResult:
    kind: ClassVar[str] = "command_result"
    command_id: str
    ok: bool
    result: dict | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        _check_pattern(self.command_id, "command_result: id", _MSG_ID, MAX_MSG_ID_CHARS,
                       "visible ASCII characters")
        if not isinstance(self.ok, bool):
            raise _invalid(f"command_result: ok must be true or false, got {describe(self.ok)}")
        if self.result is not None:
            check_payload(self.result, "command_result: result")
        if self.error is not None:
            _check_text(self.error, "command_result: error", MAX_ERROR_TEXT_CHARS, printable=False)


# --------------------------------------------------------------------------------------------
# Server -> device


@dataclass(frozen=True, slots=True)
class Registered:
    kind: ClassVar[str] = "registered"
    device_id: str
    server_time: str

    def __post_init__(self) -> None:
        _check_text(self.device_id, "registered: device_id", MAX_DEVICE_ID_CHARS, printable=True)
        _check_text(self.server_time, "registered: server_time", MAX_TS_CHARS, printable=True)


@dataclass(frozen=True, slots=True)
class Ack:
    kind: ClassVar[str] = "ack"
    msg_id: str | int

    def __post_init__(self) -> None:
        check_msg_id(self.msg_id, "ack: id")


@dataclass(frozen=True, slots=True)
class Pong:
    kind: ClassVar[str] = "pong"
    server_time: str

    def __post_init__(self) -> None:
        _check_text(self.server_time, "pong: server_time", MAX_TS_CHARS, printable=True)


@dataclass(frozen=True, slots=True)
class Command:
    kind: ClassVar[str] = "command"
    command_id: str
    command: str
    payload: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_pattern(self.command_id, "command: id", _MSG_ID, MAX_MSG_ID_CHARS, "visible ASCII characters")
        _check_pattern(self.command, "command: command name", _NAME, MAX_NAME_CHARS,
                       "letters, digits and _ . : - (not first)")
        check_payload(self.payload, "command: payload")


@dataclass(frozen=True, slots=True)
class Error:
    kind: ClassVar[str] = "error"
    code: str
    message: str

    def __post_init__(self) -> None:
        _check_pattern(self.code, "error: code", _ERROR_CODE, MAX_NAME_CHARS, "a-z, 0-9 and _")
        # No length limit: the server builds these from its own, bounded messages.
        _check_text(self.message, "error: message", math.inf, printable=False)


ClientMessage = Register | Telemetry | Event | Attendance | Ping | CommandResult
ServerMessage = Registered | Ack | Pong | Command | Error
CLIENT_TYPES = tuple(cls.kind for cls in (Register, Telemetry, Event, Attendance, Ping, CommandResult))

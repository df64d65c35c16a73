"""Messages of the device WebSocket, independent of the dialect (JSON or XML) that carries them.

Each message validates itself on construction and raises `ProtocolError("invalid", ...)`, so a
decoder only has to pick the fields out of its own syntax. Error texts use the wire names
(`id` for msg_id / command_id).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from ...errors import ProtocolError
from ..terminals.punches import MAX_RECORDS_PER_BATCH, Punch
from ..terminals.fields import describe

MAX_DOCUMENT_CHARS = 1024 * 1024  # one frame, either dialect
MAX_DEPTH = 16  # nested objects / lists in a payload; the payload itself is level 1
MAX_KEYS = 256  # per object
MAX_NODES = 10_000  # values in a whole payload
MAX_KEY_CHARS = 128
MAX_DEVICE_ID_CHARS = 64
MAX_TOKEN_CHARS = 128
MAX_NAME_CHARS = 64  # event names, command names, error codes
MAX_MSG_ID_CHARS = 64  # message and command ids
MAX_TS_CHARS = 64
MAX_ERROR_TEXT_CHARS = 1024  # command_result error
MIN_INT, MAX_INT = -(2**63), 2**63 - 1


class _Charset(NamedTuple):
    pattern: re.Pattern
    description: str


_IDENTIFIER = _Charset(
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*", re.ASCII), "letters, digits and _ . : - (not first)"
)
_VISIBLE = _Charset(re.compile(r"[!-~]+", re.ASCII), "visible ASCII characters")
_ERROR_CODE = _Charset(re.compile(r"[a-z][a-z0-9_]*", re.ASCII), "a-z, 0-9 and _")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid", message)


def frame_text(frame: object, max_chars: int, unreadable_code: str) -> str:
    """A frame as text: "too_large" over `max_chars` characters, `unreadable_code` for bytes that
    are not UTF-8 and for anything that is neither text nor bytes."""
    if isinstance(frame, (bytes, bytearray)):
        if len(frame) > 4 * max_chars:  # cheap early refusal; the character count decides below
            raise ProtocolError(
                "too_large", f"message is {len(frame)} bytes, the limit is {max_chars} characters"
            )
        try:
            frame = bytes(frame).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                unreadable_code, f"message is not UTF-8: {exc.reason} at byte {exc.start}"
            ) from None
    if not isinstance(frame, str):
        raise ProtocolError(unreadable_code, f"message must be text, got {describe(frame)}")
    if len(frame) > max_chars:
        raise ProtocolError(
            "too_large", f"message is {len(frame)} characters, the limit is {max_chars}"
        )
    return frame


def _check_word(value: object, where: str, charset: _Charset, max_chars: int) -> None:
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string, got {describe(value)}")
    if not value:
        raise _invalid(f"{where} is empty")
    if len(value) > max_chars:
        raise _invalid(f"{where} is {len(value)} characters long, the limit is {max_chars}")
    if not charset.pattern.fullmatch(value):
        raise _invalid(f"{where} may only contain {charset.description}, got {describe(value)}")


def _check_text(value: object, where: str, max_chars: float, *, printable: bool) -> None:
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string, got {describe(value)}")
    if len(value) > max_chars:
        raise _invalid(f"{where} is {len(value)} characters long, the limit is {max_chars}")
    if (_CONTROL_CHARS if printable else _SURROGATES).search(value):
        raise _invalid(f"{where} contains control characters or invalid code points")


def check_msg_id(value: object, where: str) -> None:
    """A message id is a string of visible ASCII (<= 64 chars) or a 64-bit integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not MIN_INT <= value <= MAX_INT:
            raise _invalid(f"{where} is outside the 64-bit integer range")
        return
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string or an integer, got {describe(value)}")
    _check_word(value, where, _VISIBLE, MAX_MSG_ID_CHARS)


def check_payload(payload: object, where: str) -> None:
    """A JSON-compatible object within the depth, key and size limits."""
    if not isinstance(payload, dict):
        raise _invalid(f"{where} must be an object, got {describe(payload)}")
    if not _flat_fits(payload) and _fits(payload, 1, MAX_NODES) < 0:
        _explain_payload(payload, where)


def _flat_fits(payload: dict) -> bool:
    """True for an object of plain values (no objects or lists inside) within every limit: most
    payloads, checked in one loop. False for anything else, which `_fits` then decides."""
    if len(payload) > MAX_KEYS:
        return False
    for key, item in payload.items():
        if type(key) is not str or not 0 < len(key) <= MAX_KEY_CHARS or not key.isascii() and _has_surrogates(key):
            return False
        kind = type(item)
        if kind is float:
            if item - item != 0.0:  # infinite or NaN
                return False
        elif kind is int:
            if not MIN_INT <= item <= MAX_INT:
                return False
        elif kind is str:
            if not item.isascii() and _SURROGATES.search(item) is not None:
                return False
        elif kind is not bool and item is not None:
            return False
    return True


def _has_surrogates(text: str) -> bool:
    return not text.isascii() and _SURROGATES.search(text) is not None


def _fits(value: object, depth: int, budget: int) -> int:
    """The node budget left after `value`, or -1 when anything may be off. The fast path for every
    message: it builds no paths; `_explain_payload` walks again to name the problem."""
    budget -= 1
    kind = type(value)
    if kind is str:
        return -1 if _has_surrogates(value) else budget
    if kind is int:
        return budget if MIN_INT <= value <= MAX_INT else -1
    if kind is float:
        return budget if math.isfinite(value) else -1
    if kind is bool or value is None:
        return budget
    if depth > MAX_DEPTH:
        return -1
    if kind is dict:
        if len(value) > MAX_KEYS:
            return -1
        for key, item in value.items():
            if type(key) is not str or not 0 < len(key) <= MAX_KEY_CHARS or _has_surrogates(key):
                return -1
            budget = _fits(item, depth + 1, budget)
            if budget < 0:
                return -1
        return budget
    if kind is list:
        for item in value:
            budget = _fits(item, depth + 1, budget)
            if budget < 0:
                return -1
        return budget
    return -1


def _explain_payload(payload: dict, where: str) -> None:
    """Raise the precise error for a payload the fast path refused (walks iteratively, with paths).
    Returns without raising for values the fast path does not know (e.g. subclasses of dict)."""
    stack: list[tuple[object, int, str]] = [(payload, 1, where)]
    nodes = 0
    while stack:
        value, depth, path = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise _invalid(f"{where} has more than {MAX_NODES} values")
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise _invalid(f"{path}: nesting deeper than {MAX_DEPTH} levels")
            if len(value) > MAX_KEYS:
                raise _invalid(f"{path} has {len(value)} keys, the limit is {MAX_KEYS}")
            for key, item in value.items():
                _check_key(key, path)
                stack.append((item, depth + 1, f"{path}.{key}"))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise _invalid(f"{path}: nesting deeper than {MAX_DEPTH} levels")
            stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            if _SURROGATES.search(value):
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


def _check_key(key: object, path: str) -> None:
    if not isinstance(key, str):
        raise _invalid(f"{path}: keys must be strings, got {describe(key)}")
    if not key or len(key) > MAX_KEY_CHARS:
        raise _invalid(f"{path}: keys must be 1-{MAX_KEY_CHARS} characters, got {describe(key)}")
    if _SURROGATES.search(key):
        raise _invalid(f"{path}: key {describe(key)} contains invalid code points")


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
        _check_word(self.device_id, "register: device_id", _IDENTIFIER, MAX_DEVICE_ID_CHARS)
        _check_word(self.token, "register: token", _VISIBLE, MAX_TOKEN_CHARS)


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
        _check_word(self.event, "event: event name", _IDENTIFIER, MAX_NAME_CHARS)
        check_payload(self.payload, "event: payload")
        _check_optional_ts(self.ts, "event: ts")
        _check_optional_id(self.msg_id, "event: id")


@dataclass(frozen=True, slots=True)
class Attendance:
    kind: ClassVar[str] = "attendance"
    records: list[Punch]
    msg_id: str | int | None = None

    def __post_init__(self) -> None:
        records = self.records
        if not isinstance(records, list) or not all(isinstance(r, Punch) for r in records):
            raise _invalid("attendance: records must be a list of punches")
        if len(records) > MAX_RECORDS_PER_BATCH:
            raise _invalid(
                f"attendance: {len(records)} records, the limit is {MAX_RECORDS_PER_BATCH}"
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
        _check_word(self.command_id, "command_result: id", _VISIBLE, MAX_MSG_ID_CHARS)
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
        _check_word(self.command_id, "command: id", _VISIBLE, MAX_MSG_ID_CHARS)
        _check_word(self.command, "command: command name", _IDENTIFIER, MAX_NAME_CHARS)
        check_payload(self.payload, "command: payload")


@dataclass(frozen=True, slots=True)
class Error:
    kind: ClassVar[str] = "error"
    code: str
    message: str

    def __post_init__(self) -> None:
        _check_word(self.code, "error: code", _ERROR_CODE, MAX_NAME_CHARS)
        # No length limit: the server builds these from its own, bounded messages.
        _check_text(self.message, "error: message", math.inf, printable=False)


ClientMessage = Register | Telemetry | Event | Attendance | Ping | CommandResult
ServerMessage = Registered | Ack | Pong | Command | Error
CLIENT_TYPES = tuple(
    cls.kind for cls in (Register, Telemetry, Event, Attendance, Ping, CommandResult)
)

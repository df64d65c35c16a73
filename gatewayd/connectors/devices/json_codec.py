"""The generic JSON dialect of the device WebSocket: one JSON object per text frame.

Error codes: "too_large" (frame over the size limit), "bad_json" (not JSON, not an object,
NaN / Infinity, numbers out of range), "unknown_type", "invalid" (schema violations, nesting
too deep). Unknown fields are ignored; a field set to null counts as absent. Attendance records
are read from `records` (or `record`, as attendance terminals name it).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import orjson

from .messages import (CLIENT_TYPES, MAX_DEPTH, MAX_DOCUMENT_CHARS, Ack, Attendance, ClientMessage, Command,
                       CommandResult, Error, Event, Ping, Pong, Register, Registered, ServerMessage, Telemetry,
                       frame_text)
from ...errors import ProtocolError
from ..terminals.punches import MAX_RECORDS_PER_BATCH, parse_punch, punch_to_record
from ..terminals.fields import _finite_float, _refuse_constant, describe, dumps_compact


def decode(text: str | bytes, *, max_chars: int = MAX_DOCUMENT_CHARS) -> ClientMessage:
    """One frame from a device -> message."""
    obj = _load_object(frame_text(text, max_chars, "bad_json"))
    kind = obj.get("type")
    if kind is None:
        raise ProtocolError("invalid", "message has no 'type'")
    if not isinstance(kind, str):
        raise ProtocolError("invalid", f"type must be a string, got {describe(kind)}")
    build = _BUILDERS.get(kind)
    if build is None:
        expected = ", ".join(CLIENT_TYPES)
        raise ProtocolError(
            "unknown_type", f"unknown message type {describe(kind)}; expected one of {expected}"
        )
    return build(obj)


def encode(msg: ClientMessage | ServerMessage) -> str:
    """Message -> compact JSON text. Raises TypeError for anything that is not a message."""
    to_object = _ENCODERS.get(type(msg))
    if to_object is None:
        raise TypeError(f"not a device message: {type(msg).__name__}")
    return dumps_compact(to_object(msg))


# --------------------------------------------------------------------------------------------
# Decoding


def _load_object(text: str) -> dict:
    if not text.lstrip(" \t\r\n").startswith("{"):
        raise ProtocolError("bad_json", "message must be a JSON object")
    # orjson decodes the same documents to the same values as the standard decoder below, several
    # times faster, except that it reads integers beyond 64 bits as floats (such a float is at
    # least 2**63: then the standard way decides) and that it refuses more (infinite numbers, lone
    # surrogates, nesting past 1024): all that goes the standard way too, which keeps every error
    # text. tests/devices/test_json_decoders.py holds the two to the same results.
    try:
        obj = _orjson_loads(text)
        if _no_huge_floats(obj):
            return obj
    except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
        pass
    return _load_object_strict(text)


_HUGE = 2.0 ** 63


def _no_huge_floats(value: dict | list) -> bool:
    for item in (value.values() if type(value) is dict else value):
        kind = type(item)
        if kind is float:
            if not -_HUGE < item < _HUGE:
                return False
        elif (kind is dict or kind is list) and not _no_huge_floats(item):
            return False
    return True


def _load_object_strict(text: str) -> dict:
    """The standard decoder's reading (and errors) of a frame that starts like an object."""
    try:
        obj = _DECODER.decode(text)
    except ProtocolError:
        raise
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            "bad_json", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        # the C parser recurses per level; far past MAX_DEPTH, so the schema answer fits
        raise ProtocolError(
            "invalid", f"message is nested deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:  # an integer with more digits than Python will convert
        raise ProtocolError("bad_json", f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_json", f"message must be a JSON object, got {describe(obj)}")
    return obj


_orjson_loads = orjson.loads
# One decoder for every frame: json.loads with hooks would build a new decoder and scanner per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def _required(obj: dict, key: str, kind: str) -> object:
    value = obj.get(key)
    if value is None:
        raise ProtocolError("invalid", f"{kind}: missing field '{key}'")
    return value


def _register(obj: dict) -> Register:
    return Register(_required(obj, "device_id", "register"), _required(obj, "token", "register"))


def _telemetry(obj: dict) -> Telemetry:
    return Telemetry(_required(obj, "payload", "telemetry"), obj.get("ts"), obj.get("id"))


def _event(obj: dict) -> Event:
    payload = obj.get("payload")
    return Event(
        _required(obj, "event", "event"),
        {} if payload is None else payload,
        obj.get("ts"),
        obj.get("id"),
    )


def _attendance(obj: dict) -> Attendance:
    key = "record" if obj.get("records") is None and obj.get("record") is not None else "records"
    records = _required(obj, key, "attendance")
    if not isinstance(records, list):
        raise ProtocolError("invalid", f"attendance: {key} must be a list, got {describe(records)}")
    if len(records) > MAX_RECORDS_PER_BATCH:
        raise ProtocolError(
            "invalid", f"attendance: {len(records)} records, the limit is {MAX_RECORDS_PER_BATCH}"
        )
    punches = [parse_punch(record, f"attendance: {key}[{i}]") for i, record in enumerate(records)]
    return Attendance(punches, obj.get("id"))


def _command_result(obj: dict) -> CommandResult:
    return CommandResult(
        _required(obj, "id", "command_result"),
        _required(obj, "ok", "command_result"),
        obj.get("result"),
        obj.get("error"),
    )


_BUILDERS: dict[str, Callable[[dict], ClientMessage]] = {
    "register": _register,
    "telemetry": _telemetry,
    "event": _event,
    "attendance": _attendance,
    "ping": lambda obj: Ping(),
    "command_result": _command_result,
}


# --------------------------------------------------------------------------------------------
# Encoding


def _with_optional(obj: dict, **optional: object) -> dict:
    obj.update((key, value) for key, value in optional.items() if value is not None)
    return obj


def _telemetry_object(m: Telemetry) -> dict:
    return _with_optional({"type": "telemetry", "payload": m.payload}, ts=m.ts, id=m.msg_id)


def _event_object(m: Event) -> dict:
    obj = {"type": "event", "event": m.event, "payload": m.payload}
    return _with_optional(obj, ts=m.ts, id=m.msg_id)


def _attendance_object(m: Attendance) -> dict:
    obj = {"type": "attendance", "records": [punch_to_record(p) for p in m.records]}
    return _with_optional(obj, id=m.msg_id)


def _command_result_object(m: CommandResult) -> dict:
    obj = {"type": "command_result", "id": m.command_id, "ok": m.ok}
    return _with_optional(obj, result=m.result, error=m.error)


def _registered_object(m: Registered) -> dict:
    return {"type": "registered", "device_id": m.device_id, "server_time": m.server_time}


def _command_object(m: Command) -> dict:
    return {"type": "command", "id": m.command_id, "command": m.command, "payload": m.payload}


_ENCODERS: dict[type, Callable] = {
    Register: lambda m: {"type": "register", "device_id": m.device_id, "token": m.token},
    Telemetry: _telemetry_object,
    Event: _event_object,
    Attendance: _attendance_object,
    Ping: lambda m: {"type": "ping"},
    CommandResult: _command_result_object,
    Registered: _registered_object,
    Ack: lambda m: {"type": "ack", "id": m.msg_id},
    Pong: lambda m: {"type": "pong", "server_time": m.server_time},
    Command: _command_object,
    Error: lambda m: {"type": "error", "code": m.code, "message": m.message},
}

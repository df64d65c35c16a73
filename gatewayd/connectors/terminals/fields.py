"""Reading what terminals send: lenient JSON (trailing commas, padded keys and values) and the field
readers every terminal and device codec shares. Pure; bad input raises ProtocolError."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

from ...errors import ProtocolError


MAX_TIME_TEXT_CHARS = 64
_INT_TEXT = re.compile(r"[+-]?\d{1,19}", re.ASCII)
_FLOAT_TEXT = re.compile(
    r"[+-]?(?:\d{1,20}(?:\.\d{0,20})?|\.\d{1,20})(?:[eE][+-]?\d{1,3})?", re.ASCII
)
_LOCAL_TIME = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?", re.ASCII
)
CLOUDTIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")

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


def invalid(message: str) -> ProtocolError:
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


def to_int(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise invalid(f"{where} must be an integer, got {describe(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise invalid(f"{where} must be an integer, got {describe(value)}")
    if not low <= number <= high:
        raise invalid(f"{where} must be between {low} and {high}, got {describe(number)}")
    return number


def to_float(value: object, where: str) -> float:
    if isinstance(value, bool):
        raise invalid(f"{where} must be a number, got {describe(value)}")
    if isinstance(value, int):
        number = float(value) if abs(value) < 10**30 else math.inf
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise invalid(f"{where} must be a number, got {describe(value)}")
    if not math.isfinite(number):
        raise invalid(f"{where} must be a finite number, got {describe(value)}")
    return number


def to_text(value: object, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise invalid(f"{where} must be a string, got {describe(value)}")
    text = value.strip()
    if len(text) > max_chars:
        raise invalid(f"{where} is {len(text)} characters long, the limit is {max_chars}")
    if CONTROL_CHARS.search(text):
        raise invalid(f"{where} contains control characters or invalid code points")
    return text


def parse_local_time(text: str, where: str = "time") -> datetime:
    """Terminal wall-clock time without a zone: 'YYYY-MM-DD HH:MM:SS' or with 'T', with up to
    six fractional digits (what Python's isoformat() writes). Returns a naive datetime."""
    match = _LOCAL_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise invalid(
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
        raise invalid(f"{where} is not a real date and time: {describe(text)} ({exc})") from None


# Built once: json.dumps with options builds a new encoder on every call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps_compact(obj: object) -> str:
    """Compact JSON text (UTF-8 characters as they are, no NaN) for replies on the wire."""
    return _COMPACT_JSON.encode(obj)

"""One journal line: a JSON object whose last member is a CRC-32 of everything before it.

    {"seq":42,"ts":"2026-11-22T03:04:05.123456Z","type":"device.telemetry","data":{...},"crc":"1a2b3c4d"}

The checksum covers the UTF-8 bytes of the same object without its "crc" member, i.e. the line
with `,"crc":"xxxxxxxx"` removed. A reader therefore needs no JSON re-serialisation to check it,
and every line is still plain JSON for jq and friends.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

_CRC_TAIL_LEN = len(',"crc":"00000000"}')
_CRC_PREFIX = b',"crc":"'
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_decode = json.loads


class RecordError(ValueError):
    """A line that is not a well-formed, checksummed journal record."""


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    ts: str
    type: str
    data: dict[str, Any]


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def encode_line(record: Record) -> bytes:
    """Serialise a record to one newline-terminated line with its checksum."""
    body = _encoder.encode(
        {"seq": record.seq, "ts": record.ts, "type": record.type, "data": record.data}
    ).encode()
    crc = zlib.crc32(body)
    return b"%s,\"crc\":\"%08x\"}\n" % (body[:-1], crc)


def decode_line(line: bytes) -> Record:
    """Parse and check one line (with or without its trailing newline)."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if len(line) < _CRC_TAIL_LEN + 2 or line[-_CRC_TAIL_LEN:-10] != _CRC_PREFIX or line[-2:] != b'"}':
        raise RecordError("no checksum at the end of the line")
    body = line[:-_CRC_TAIL_LEN] + b"}"
    try:
        expected = int(line[-10:-2], 16)
    except ValueError:
        raise RecordError("checksum is not hexadecimal") from None
    if zlib.crc32(body) != expected:
        raise RecordError("checksum mismatch")
    try:
        obj = _decode(body)
        return Record(obj["seq"], obj["ts"], obj["type"], obj["data"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"checksum matches but the record is malformed: {exc}") from None

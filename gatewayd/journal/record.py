"""One journal line: a JSON object whose last member is a CRC-32 of everything before it.

    {"seq":42,"ts":"2026-11-22T03:04:05.123456Z","type":"device.telemetry","data":{...},"crc":"1a2b3c4d"}

The checksum covers the UTF-8 bytes of the same object without its "crc" member, i.e. the line
with `,"crc":"xxxxxxxx"` removed. A reader therefore needs no JSON re-serialisation to check it,
and every line is still plain JSON for jq and friends.
"""

from __future__ import annotations

import time
import zlib
from datetime import datetime, timezone
from itertools import repeat
from operator import eq, itemgetter
from typing import Any, NamedTuple

import orjson

_CRC_TAIL_LEN = len(',"crc":"00000000"}')
_CRC_PREFIX = b',"crc":"'
# orjson: replay decodes and publish encodes every record once, so these are the hot paths.
_dumps = orjson.dumps
_loads = orjson.loads
_crc32 = zlib.crc32
# decode_lines: per-line steps as C callables, so a segment is checked without a Python loop.
_body_of = itemgetter(slice(None, -_CRC_TAIL_LEN))
_tail_of = itemgetter(slice(-_CRC_TAIL_LEN, None))
_tail_for = b',"crc":"%08x"}'.__mod__
_fields_of = itemgetter("seq", "ts", "type", "data")


class RecordError(ValueError):
    """A line that is not a well-formed, checksummed journal record."""


class UnencodableRecord(ValueError):
    """Data that cannot be a journal record (e.g. an integer beyond 64 bits, a non-string key)."""


class Record(NamedTuple):
    seq: int
    ts: str
    type: str
    data: dict[str, Any]


_new_record = tuple.__new__  # skips NamedTuple's Python-level __new__ (replay and publish paths)

# (second, "2026-11-22T03:04:05.%06dZ"): the text up to the second changes once a second.
_second_template: tuple[int, str] = (-1, "")
_time_ns = time.time_ns


def utc_now_iso() -> str:
    """UTC now as 2026-11-22T03:04:05.123456Z (this runs once per record published)."""
    global _second_template
    second, micro = divmod(_time_ns() // 1000, 1_000_000)
    if second != _second_template[0]:
        text = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second_template = (second, text + ".%06dZ")
    return _second_template[1] % micro


def parse_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts)  # the record form ends in "Z", which 3.11 reads as UTC


def encode_line(record: Record) -> bytes:
    """Serialise a record to one newline-terminated line with its checksum."""
    seq, ts, type_, data = record
    try:
        body = _dumps({"seq": seq, "ts": ts, "type": type_, "data": data})
    except TypeError as exc:  # orjson.JSONEncodeError
        raise UnencodableRecord(f"cannot journal this {type_} record: {exc}") from None
    return b"%s,\"crc\":\"%08x\"}\n" % (body[:-1], _crc32(body))


_DATA_KEY = b',"data":'
_CRC_TAIL_WITH_NEWLINE = _CRC_TAIL_LEN + 1


def data_text(line: bytes) -> bytes:
    """The JSON text of the data of a line `encode_line` wrote (the line's bytes between "data":
    and the checksum): what orjson.dumps(record.data) gives, without encoding it again."""
    return line[line.index(_DATA_KEY) + len(_DATA_KEY):-_CRC_TAIL_WITH_NEWLINE]


def decode_line(line: bytes) -> Record:
    """Parse and check one line (with or without its trailing newline)."""
    if line[-1:] == b"\n":
        line = line[:-1]
    return decode_unterminated(line)


def decode_unterminated(line: bytes) -> Record:
    """decode_line for a line already split off (the replay loop calls this once per record)."""
    if line[-_CRC_TAIL_LEN:-10] != _CRC_PREFIX or line[-2:] != b'"}' or len(line) < _CRC_TAIL_LEN + 2:
        raise RecordError("no checksum at the end of the line")
    try:
        expected = int(line[-10:-2], 16)
    except ValueError:
        raise RecordError("checksum is not hexadecimal") from None
    if _crc32(b"}", _crc32(line[:-_CRC_TAIL_LEN])) != expected:
        raise RecordError("checksum mismatch")
    try:
        obj = _loads(line)  # the whole line is JSON too; its "crc" member is simply ignored
        return _new_record(Record, (obj["seq"], obj["ts"], obj["type"], obj["data"]))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise RecordError(f"checksum matches but the record is malformed: {exc!r}") from None


def _tails_check_out(lines: list[bytes]) -> bool:
    return all(map(eq, map(_tail_of, lines),
                   map(_tail_for, map(_crc32, repeat(b"}"), map(_crc32, map(_body_of, lines))))))


def decode_lines(lines: list[bytes]) -> list[Record]:
    """decode_unterminated for many lines at once; RecordError if any of them fails.

    The error does not say which line or why: the caller decodes one line at a time to find out.
    Accepts exactly what decode_unterminated accepts in its canonical form (lower-case hex), which
    is what encode_line writes; anything else is left to the line-by-line path.
    """
    if not _tails_check_out(lines):
        raise RecordError("a line does not check out")
    try:
        return list(map(_new_record, repeat(Record), map(_fields_of, map(_loads, lines))))
    except (ValueError, KeyError, TypeError, RecursionError):
        raise RecordError("a line does not check out") from None


def lines_check_out(lines: list[bytes]) -> bool:
    """Whether decode_lines would accept these lines, without keeping what it decodes."""
    try:
        return _tails_check_out(lines) and all(map(_fields_of, map(_loads, lines)))
    except (ValueError, KeyError, TypeError, RecursionError):
        return False

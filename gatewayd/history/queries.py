"""Reading the history database: punches, telemetry (raw or in time buckets), communications.

Plain synchronous functions over a reading connection. Each runs one short query (an index range)
or returns an iterator the caller drains in chunks; nothing here writes.
"""

from __future__ import annotations

import heapq
import logging
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import orjson

from ..journal.record import Record
from . import comm_chunks, retention, telemetry_windows as windows
from .telemetry_windows import HOUR_US
from .writer import _PUNCH_COLUMNS

log = logging.getLogger("gatewayd.history")

FETCH_ROWS = 1000
# Records one communications query renders at most (it runs on the event loop); a page that
# reached this before its limit ends early with a cursor to go on from.
SCAN_RECORDS = 20_000
# The item part of a cursor that points past every item of its record.
PAST_ITEMS = 999_999


class StoredPunch:
    """One punch as stored: the columns of the `punches` table as attributes."""

    __slots__ = _PUNCH_COLUMNS

    def __init__(self, row: tuple) -> None:
        for name, value in zip(_PUNCH_COLUMNS, row):
            setattr(self, name, value)
        self.skew = bool(self.skew)
        self.held = bool(self.held)


_SELECT_PUNCHES = f"SELECT {', '.join(_PUNCH_COLUMNS)} FROM punches"


PUNCH_KEYS_PER_QUERY = 50  # one statement per 50 keys: 250 parameters, 50 compound terms (SQLite allows 500)
_PUNCH_BY_KEY = ("SELECT enrollid, key_time, inout, event, seq, held FROM punches "
                 "WHERE source = ? AND enrollid = ? AND key_time = ? AND inout = ? AND event = ?")


def punch_seqs(conn: sqlite3.Connection, source: str,
               keys: list[tuple[int, str, int, int]]) -> dict[tuple[int, str, int, int], tuple[int, bool]]:
    """(seq, held) of the stored punches of `source` among the dedup keys (enrollid, key_time, inout,
    event), by key; keys not stored are absent. One statement per PUNCH_KEYS_PER_QUERY keys: a read
    per key costs a transaction and a hand-over of the interpreter lock each."""
    found: dict[tuple[int, str, int, int], tuple[int, bool]] = {}
    for start in range(0, len(keys), PUNCH_KEYS_PER_QUERY):
        chunk = keys[start:start + PUNCH_KEYS_PER_QUERY]
        args: list[Any] = []
        for key in chunk:
            args.append(source)
            args.extend(key)
        for enrollid, key_time, inout, event, seq, held in conn.execute(
                " UNION ALL ".join([_PUNCH_BY_KEY] * len(chunk)), args):
            found[(enrollid, key_time, inout, event)] = (seq, bool(held))
    return found


def held_punches(conn: sqlite3.Connection, source: str) -> int:
    return conn.execute("SELECT count(*) FROM punches WHERE source = ? AND held = 1", (source,)).fetchone()[0]


def select_punches(conn: sqlite3.Connection, *, start: float | None = None, end: float | None = None,
                   end_inclusive: bool = True, sn: str | None = None, enrollid: int | None = None,
                   after: int = 0, limit: int | None = None, newest_first: bool = False) -> Iterator[StoredPunch]:
    """Stored (not held) punches in id order, filtered; held ones are left out."""
    where, args = ["held = 0"], []
    if after:
        where.append("id > ?")
        args.append(after)
    if sn is not None:
        where.append("source = ?")
        args.append(sn)
    if enrollid is not None:
        where.append("enrollid = ?")
        args.append(enrollid)
    if start is not None:
        where.append("utc_ts >= ?")
        args.append(start)
    if end is not None:
        where.append("utc_ts <= ?" if end_inclusive else "utc_ts < ?")
        args.append(end)
    sql = f"{_SELECT_PUNCHES} WHERE {' AND '.join(where)} ORDER BY id {'DESC' if newest_first else ''}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cursor = conn.execute(sql, args)
    while True:
        rows = cursor.fetchmany(FETCH_ROWS)
        if not rows:
            return
        yield from map(StoredPunch, rows)


# -- telemetry ------------------------------------------------------------------------------------
def _device_number(conn: sqlite3.Connection, device_id: str) -> int | None:
    row = conn.execute("SELECT n FROM device_ids WHERE id = ? AND retired_seq IS NULL", (device_id,)).fetchone()
    return None if row is None else row[0]


iso_us = retention.iso

_TELEMETRY_META = ("regrouped_seq", "recent_from_ts", "hourly_until", "raw_from_hour")


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """One read transaction (the writer may regroup meanwhile: the reads must see one state), and
    the store's telemetry bookkeeping as of it."""
    conn.execute("BEGIN")
    try:
        meta = dict(conn.execute(f"SELECT name, value FROM meta WHERE name IN {_TELEMETRY_META}"))
        yield meta
    finally:
        conn.execute("COMMIT")


def _recent(conn: sqlite3.Connection, meta: dict[str, Any], device_id: str, low: int,
            high: int) -> list[windows.Entry]:
    """The device's telemetry not regrouped yet, in [low, high]: (ts, seq, device_ts, payload)."""
    found = []
    for ts, seq, text in windows.pending_records(conn, int(meta.get("regrouped_seq") or 0), meta.get("recent_from_ts"),
                                                 windows.device_needle(device_id)):
        if low <= ts <= high:
            data = orjson.loads(text)
            if data.get("device_id") == device_id:
                found.append((ts, seq, data.get("device_ts"), data.get("payload")))
    return found


def telemetry_messages(conn: sqlite3.Connection, device_id: str, start_us: int | None, end_us: int | None,
                       limit: int) -> list[dict[str, Any]]:
    """The last `limit` messages in [start, end], oldest first: {seq, ts, payload, device_ts?}."""
    if limit <= 0:
        return []
    low = -(1 << 62) if start_us is None else start_us
    high = 1 << 62 if end_us is None else end_us
    with _snapshot(conn) as meta:
        device = _device_number(conn, device_id)
        if device is None:
            return []
        newest: list[tuple[int, int, Any, Any]] = []  # a heap of the `limit` latest (ts, seq) so far

        def offer(entries: Iterable[windows.Entry]) -> None:
            for entry in entries:
                if low <= entry[0] <= high:
                    if len(newest) < limit:
                        heapq.heappush(newest, entry)
                    elif entry[:2] > newest[0][:2]:
                        heapq.heapreplace(newest, entry)

        offer(_recent(conn, meta, device_id, low, high))
        for first_ts, last_ts, blob in windows.device_rows(conn, device, low, high, newest_first=True):
            if len(newest) < limit or last_ts >= newest[0][0]:  # a row of older values only is not read
                offer(windows.decode(blob))
    items = []
    for ts, seq, device_ts, payload in sorted(newest, key=lambda e: e[:2]):
        item = {"seq": seq, "ts": iso_us(ts), "payload": payload}
        if device_ts is not None:
            item["device_ts"] = device_ts
        items.append(item)
    return items


@dataclass
class Bucket:
    start_us: int
    low: float
    high: float
    total: float
    count: int

    def merge(self, low: float, high: float, total: float, count: int) -> None:
        self.low = min(self.low, low)
        self.high = max(self.high, high)
        self.total += total
        self.count += count

    def public(self) -> dict[str, Any]:
        return {"t": iso_us(self.start_us), "mean": self.total / self.count, "min": self.low, "max": self.high,
                "count": self.count}


def telemetry_series(conn: sqlite3.Connection, device_id: str, key: str, start_us: int, end_us: int,
                     every_us: int) -> list[dict[str, Any]]:
    """Numeric values of `key` in [start, end) as buckets of `every_us` (aligned to the epoch): mean,
    min, max and count each. Buckets of whole hours come from the hourly figures wherever an hour has
    them (a month is 720 rows, not 43,200 messages), smaller ones from the messages wherever they are
    kept; an hour kept only as figures counts as one bucket at its start."""
    with _snapshot(conn) as meta:
        device = _device_number(conn, device_id)
        if device is None:
            return []
        figures: dict[int, list] = {}  # bucket -> [low, high, total, count]
        split_hour = int(meta.get("hourly_until" if every_us % HOUR_US == 0 else "raw_from_hour") or 0)
        raw_start = max(start_us, split_hour * HOUR_US)
        if raw_start < end_us:
            add = windows.add_value
            for ts, _seq, _device_ts, payload in _recent(conn, meta, device_id, raw_start, end_us - 1):
                if isinstance(payload, dict) and key in payload:
                    add(figures, ts // every_us, payload[key])
            for _first, _last, blob in windows.device_rows(conn, device, raw_start, end_us - 1):
                for ts, _seq, _device_ts, payload in windows.decode(blob):
                    if raw_start <= ts < end_us and isinstance(payload, dict) and key in payload:
                        add(figures, ts // every_us, payload[key])
        buckets = {bucket: Bucket(bucket * every_us, *values) for bucket, values in figures.items()}
        hourly = conn.execute(
            "SELECT hour, low, high, total, count FROM telemetry_hourly WHERE hour >= ? AND hour < ? "
            "AND device = ? AND key = ?",
            (start_us // HOUR_US, min(-(-end_us // HOUR_US), split_hour), device, key))
        for hour, low, high, total, count in hourly:
            bucket = hour * HOUR_US // every_us
            found = buckets.get(bucket)
            if found is None:
                buckets[bucket] = Bucket(bucket * every_us, low, high, total, count)
            else:
                found.merge(low, high, total, count)
    return [buckets[b].public() for b in sorted(buckets)]


# -- communications --------------------------------------------------------------------------------
def communications(conn: sqlite3.Connection, *, start_us: int | None, end_us: int | None, device: str | None,
                   comm_type: str | None, limit: int, after: tuple[int, int, int] | None = None,
                   mapper: Callable[[Record], Iterable[Any]] | None = None,
                   scan: int = SCAN_RECORDS) -> tuple[list[dict[str, Any]], str | None]:
    """Stored communications in (ts, seq, item) order within [start, end], at most `limit`; `after`
    is the (ts, seq, item) of the last one of the previous page. Each stored record is rendered by
    `mapper` (the monitoring stream's). Returns (items, resume): `resume` is the cursor to go on
    from when `scan` records were read before `limit` items were found, else None."""
    if mapper is None or limit <= 0:
        return [], None
    low = start_us if start_us is not None else -(1 << 62)
    high = end_us if end_us is not None else 1 << 62
    first = (low, -1)
    if after is not None:  # the same record again for its later items, unless the cursor is past them all
        first = max(first, (after[0], after[1] + 1 if after[2] >= PAST_ITEMS else after[1]))
    # Mappers take the device from the record's data: a record without it as a JSON string has none of its items.
    needle = orjson.dumps(device) if device else None
    chunks = conn.execute("SELECT ts, data FROM communications WHERE last_ts >= ? AND ts <= ? ORDER BY ts, seq",
                          (first[0], high))
    items: list[dict[str, Any]] = []
    scanned = 0
    for ts, seq, record_type, data in comm_chunks.ordered(chunks):
        if (ts, seq) < first:
            continue
        if ts > high:
            break
        scanned += 1
        if scanned > scan:  # go on from this record
            return items, f"{ts}.{seq - 1}.{PAST_ITEMS}"
        if needle is not None and needle not in data:
            continue
        first_item = after[2] + 1 if after is not None and (ts, seq) == after[:2] else 0
        for index, comm in enumerate(_render(mapper, ts, seq, record_type, data)):
            if index < first_item or (device is not None and comm.dev_eui != device) or \
                    (comm_type is not None and comm.comm_type != comm_type):
                continue
            items.append(_entry(ts, seq, index, comm))
            if len(items) >= limit:
                return items, None
    return items, None


def _render(mapper: Callable[[Record], Iterable[Any]], ts: int, seq: int, record_type: str,
            data: bytes) -> list[Any]:
    try:
        return list(mapper(Record(seq, iso_us(ts), record_type, orjson.loads(data))))
    except Exception as exc:  # a record this version cannot render: the others still can
        log.warning("history store: record %d (%s) cannot be shown as communications: %r", seq, record_type, exc)
        return []


def _entry(ts: int, seq: int, index: int, comm: Any) -> dict[str, Any]:
    extra = dict(comm.extra)
    if comm.port is not None:
        extra["port"] = comm.port
    if comm.gateway_euis:
        extra["gateways"] = list(comm.gateway_euis)
    for name in ("command", "reference", "error"):
        value = getattr(comm, name)
        if value is not None:
            extra[name] = value
    entry = {"seq": seq, "item": index, "ts": iso_us(ts), "device": comm.dev_eui, "type": comm.comm_type,
             "connector": comm.connector, "payload_hex": bytes(comm.payload).hex(), "cursor": f"{ts}.{seq}.{index}"}
    if extra:
        entry["extra"] = extra
    return entry

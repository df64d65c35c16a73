"""Telemetry history: recent records in `communications`, then regrouped by device, then per hour.

A telemetry record is stored with the commit that applies it, as a line of a `communications`
chunk (comm_chunks.py): that is all a commit writes for it. Once REGROUP_RECORDS telemetry records
(or REGROUP_SPAN_US of their time) are waiting, they are read back and written once more, grouped
by device: a window (`telemetry_windows`) and one row per device in it (`telemetry`: the values
of that device, compressed together). An hour gets its figures (`telemetry_hourly`) once it is
over, read from the windows. Every table grows at its end only, so the pages a commit writes are
about the pages its data fills, whatever the number of devices: what an SD card is spared.

A window row holds `[[ts delta, seq delta, device_ts, payload], ...]` in seq order (deltas from
the entry before, the first from 0), as JSON compressed with zstd. Blocking code for the
history worker thread and for readers.
"""

from __future__ import annotations

import time
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator

import orjson
import zstandard

from . import comm_chunks

TELEMETRY = "device.telemetry"
HOUR_US = 3_600_000_000
# Records regrouped together: about this many divided by the devices sending is what one row of
# `telemetry` holds (values compress well in rows of dozens), and what a query reads from
# `communications` at most (a few milliseconds of decoding).
REGROUP_RECORDS = 20_000
# ... or the records of this much time, at a slow rate.
REGROUP_SPAN_US = HOUR_US
# The worker thread lets the event loop have the interpreter lock after this many items of Python
# work (about a millisecond): otherwise the loop waits up to the 5 ms switch interval each time
# it wants the lock back after a system call, for as long as a regrouping runs.
YIELD_EVERY = 256
let_others_run = time.sleep  # let_others_run(0): release the lock; a thread waiting for it takes it

Entry = tuple[int, int, Any, Any]  # (ts us, seq, device_ts, payload)


def encode(compressor: zstandard.ZstdCompressor, entries: Iterable[Entry]) -> bytes:
    """(ts, seq, device_ts, payload) in seq order -> a row's data."""
    rows, last_ts, last_seq = [], 0, 0
    for ts, seq, device_ts, payload in entries:
        rows.append((ts - last_ts, seq - last_seq, device_ts, payload))
        last_ts, last_seq = ts, seq
    # One dumps per row: a bytes object from orjson takes a 4 KiB block however short it is.
    return compressor.compress(orjson.dumps(rows))


def decode(blob: bytes) -> list[Entry]:
    entries, ts, seq = [], 0, 0
    for ts_delta, seq_delta, device_ts, payload in orjson.loads(zstandard.ZstdDecompressor().decompress(blob)):
        ts += ts_delta
        seq += seq_delta
        entries.append((ts, seq, device_ts, payload))
    return entries


def pending_chunks(conn, regrouped_seq: int, recent_from_ts: int | None) -> Iterable[tuple[bytes]]:
    """The `communications` rows that may hold telemetry not regrouped yet, in seq order."""
    if recent_from_ts is None:
        return ()
    return conn.execute("SELECT data FROM communications WHERE ts >= ? AND seq > ? ORDER BY seq",
                        (recent_from_ts, regrouped_seq))


def pending_records(conn, regrouped_seq: int, recent_from_ts: int | None,
                    needle: bytes | None = None) -> Iterator[tuple[int, int, bytes]]:
    """(ts, seq, data JSON) of the telemetry records not regrouped yet; with `needle`, only those
    whose data holds it."""
    for (blob,) in pending_chunks(conn, regrouped_seq, recent_from_ts):
        let_others_run(0)
        for ts, seq, record_type, data in comm_chunks.decode(blob, needle):
            if seq > regrouped_seq and record_type == TELEMETRY and (needle is None or needle in data):
                yield ts, seq, data


def device_needle(device_id: str) -> bytes:
    """What a telemetry record's data JSON holds for this device (a quick filter before parsing)."""
    return orjson.dumps(device_id)


# -- regrouping -----------------------------------------------------------------------------------
def write_window(conn, compressor: zstandard.ZstdCompressor, groups: dict[int, list[Entry]],
                 seen: Callable[[int, list[Entry]], None] | None = None) -> int:
    """Store one window: for each device number, its (ts, seq, device_ts, payload) entries. `seen`
    is shown each device's entries, in seq order, as they are written. Returns how many."""
    groups = {n: sorted(entries, key=itemgetter(1)) for n, entries in groups.items() if entries}
    if not groups:
        return 0
    firsts = [min(e[0] for e in entries) for entries in groups.values()]
    lasts = [max(e[0] for e in entries) for entries in groups.values()]
    count = sum(len(entries) for entries in groups.values())
    window = conn.execute(
        "INSERT INTO telemetry_windows (first_ts, last_ts, first_seq, last_seq, count) VALUES (?, ?, ?, ?, ?)",
        (min(firsts), max(lasts), min(e[0][1] for e in groups.values()), max(e[-1][1] for e in groups.values()),
         count)).lastrowid

    def rows() -> Iterator[tuple]:
        done = 0
        for (n, entries), first, last in sorted(zip(groups.items(), firsts, lasts)):
            done += len(entries)
            if done >= YIELD_EVERY:
                let_others_run(0)
                done = 0
            if seen is not None:
                seen(n, entries)
            yield window, n, first, last, len(entries), encode(compressor, entries)

    conn.executemany(
        "INSERT INTO telemetry (window, device, first_ts, last_ts, count, data) VALUES (?, ?, ?, ?, ?, ?)", rows())
    return count


# -- hourly figures --------------------------------------------------------------------------------
def add_value(figures: dict, key: tuple, value: Any) -> None:
    """Fold one value into figures[key] = [low, high, total, count] (numbers only, not booleans)."""
    if type(value) is not int and type(value) is not float:
        return
    found = figures.get(key)
    if found is None:
        figures[key] = [value, value, float(value), 1]
    else:
        if value < found[0]:
            found[0] = value
        if value > found[1]:
            found[1] = value
        found[2] += value
        found[3] += 1


def open_hour_figures(conn, from_hour: int) -> dict[tuple[int, int, str], list]:
    """{(hour, device, key): [low, high, total, count]} of the regrouped numeric values of the hours
    from `from_hour` on, each added in seq order (as regrouping adds them: the totals are the same
    however the values were cut into windows)."""
    start = from_hour * HOUR_US
    figures: dict[tuple[int, int, str], list] = {}
    rows = conn.execute(
        "SELECT t.device, t.data FROM telemetry_windows AS w JOIN telemetry AS t ON t.window = w.id "
        "WHERE w.last_ts >= ? AND t.last_ts >= ? ORDER BY w.id, t.device", (start, start))
    for device, blob in rows:
        for ts, _seq, _device_ts, payload in decode(blob):
            if ts >= start and type(payload) is dict:
                hour = ts // HOUR_US
                for key, value in payload.items():
                    add_value(figures, (hour, device, key), value)
    return figures


def store_figures(conn, rows: list[tuple]) -> None:
    """(hour, device, key, low, high, total, count) rows, in that order, into `telemetry_hourly`."""
    conn.executemany(
        "INSERT INTO telemetry_hourly (hour, device, key, low, high, total, count) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (hour, device, key) DO UPDATE SET low = min(low, excluded.low), "
        "high = max(high, excluded.high), total = total + excluded.total, count = count + excluded.count", rows)


def merge_late_values(conn, device: int, entries: list[tuple[int, int, Any]]) -> None:
    """Values of hours that have their figures already (the clock stepped back), in seq order:
    each folded into its hour's row."""
    for ts, _seq, payload in entries:
        if not isinstance(payload, dict):
            continue
        hour = ts // HOUR_US
        for key, value in payload.items():
            row = conn.execute("SELECT low, high, total, count FROM telemetry_hourly "
                               "WHERE hour = ? AND device = ? AND key = ?", (hour, device, key)).fetchone()
            figures = {} if row is None else {key: list(row)}
            add_value(figures, key, value)
            if key in figures:
                conn.execute("INSERT OR REPLACE INTO telemetry_hourly (hour, device, key, low, high, total, count) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", (hour, device, key, *figures[key]))


# -- dropping old values ---------------------------------------------------------------------------
def drop_before(conn, compressor: zstandard.ZstdCompressor, cutoff: int) -> int:
    """Remove the regrouped values older than `cutoff`; returns how many. A row holding values on
    both sides keeps the newer ones."""
    removed = 0
    for window, count in conn.execute("SELECT id, count FROM telemetry_windows WHERE last_ts < ?",
                                      (cutoff,)).fetchall():
        conn.execute("DELETE FROM telemetry WHERE window = ?", (window,))
        conn.execute("DELETE FROM telemetry_windows WHERE id = ?", (window,))
        removed += count
    for (window,) in conn.execute("SELECT id FROM telemetry_windows WHERE first_ts < ?", (cutoff,)).fetchall():
        for device, blob in conn.execute("SELECT device, data FROM telemetry WHERE window = ? AND first_ts < ?",
                                         (window, cutoff)).fetchall():
            entries = decode(blob)
            kept = [e for e in entries if e[0] >= cutoff]
            removed += len(entries) - len(kept)
            if kept:
                conn.execute("UPDATE telemetry SET first_ts = ?, last_ts = ?, count = ?, data = ? "
                             "WHERE window = ? AND device = ?",
                             (min(e[0] for e in kept), max(e[0] for e in kept), len(kept),
                              encode(compressor, kept),
                              window, device))
            else:
                conn.execute("DELETE FROM telemetry WHERE window = ? AND device = ?", (window, device))
        first, count = conn.execute("SELECT min(first_ts), sum(count) FROM telemetry WHERE window = ?",
                                    (window,)).fetchone()
        if first is None:
            conn.execute("DELETE FROM telemetry_windows WHERE id = ?", (window,))
        else:
            conn.execute("UPDATE telemetry_windows SET first_ts = ?, count = ? WHERE id = ?", (first, count, window))
    return removed


# -- reading ---------------------------------------------------------------------------------------
def device_rows(conn, device: int, low: int, high: int, newest_first: bool = False) -> Iterator[
        tuple[int, int, bytes]]:
    """(first_ts, last_ts, data) of one device's rows that may hold values in [low, high], in window
    order (the newest first if asked)."""
    order = "DESC" if newest_first else ""
    return conn.execute(
        "SELECT t.first_ts, t.last_ts, t.data FROM telemetry_windows AS w "
        "JOIN telemetry AS t ON t.window = w.id AND t.device = ? "
        f"WHERE w.last_ts >= ? AND w.first_ts <= ? AND t.last_ts >= ? AND t.first_ts <= ? ORDER BY w.id {order}",
        (device, low, high, low, high))

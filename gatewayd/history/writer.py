"""Applying journal records to the history database: one transaction per batch, position included.

Blocking code for the projection's worker thread (and for `gatewayd history rebuild`). Applying
the same records in the same order gives the same rows however they are cut into batches: a
record's rows depend only on the record and on what earlier records stored.

Communications are stored as the records they come from (type and data, compressed in chunks) and
rendered by the monitor's comm mappers when they are read: a record costs a few dozen bytes here,
whatever its communications look like, and reads show exactly what the monitoring stream shows.
Telemetry records are always stored that way first (telemetry_windows.py says what follows).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path
from itertools import repeat
from operator import itemgetter
from typing import Any, Callable, Collection, Iterable, Sequence

import orjson
import zstandard

from ..journal.record import Record, data_text
from . import comm_chunks, migrate, schema, telemetry_windows as windows
from .telemetry_windows import HOUR_US, TELEMETRY

log = logging.getLogger("gatewayd.history")

CommMapper = Callable[[Record], Iterable[Any]]

# Records of a commit are stored ordered by device (then seq): a device's lines side by side
# compress better. Records of no device (as far as the store knows) come first.
_NO_DEVICE = -1
_by_device = itemgetter(3, 1)

_PUNCH_COLUMNS = ("id", "seq", "received", "source", "connector", "enrollid", "time", "key_time", "tz", "utc",
                  "utc_ts", "mode", "inout", "event", "temp", "verifymode", "image_chars", "skew", "held")
_INSERT_PUNCH = (f"INSERT OR IGNORE INTO punches ({', '.join(_PUNCH_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(_PUNCH_COLUMNS))})")
# Punches go in as multi-row statements of at most this many rows: one SQLite step (and one GIL
# hand-over by the worker thread) per statement instead of one per punch.
PUNCH_ROWS_PER_STATEMENT = 200
_punch_inserts: dict[int, str] = {}


def _insert_punches_sql(rows: int) -> str:
    sql = _punch_inserts.get(rows)
    if sql is None:
        one = f"({', '.join('?' * len(_PUNCH_COLUMNS))})"
        sql = _punch_inserts[rows] = (f"INSERT OR IGNORE INTO punches ({', '.join(_PUNCH_COLUMNS)}) VALUES "
                                      + ", ".join([one] * rows))
    return sql


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
# ("2026-11-22T03:04:05", its second since the epoch): records come in time order, so the text up
# to the second repeats from one record to the next.
_last_second: tuple[str, int] = ("", 0)


def ts_us(ts: str) -> int:
    """A record's "2026-11-22T03:04:05.123456Z" as microseconds since the epoch (exactly)."""
    global _last_second
    if len(ts) == 27 and ts[19] == "." and ts[26] == "Z":
        second = ts[:19]
        if second != _last_second[0]:
            _last_second = (second, (datetime.fromisoformat(second + "Z") - _EPOCH) // timedelta(seconds=1))
        return _last_second[1] * 1_000_000 + int(ts[20:26])
    return (datetime.fromisoformat(ts) - _EPOCH) // _MICROSECOND


_dumps = orjson.dumps


def _json(value: Any) -> str:
    return _dumps(value).decode()


class HistoryWriter:
    """The one writing connection. Not thread-safe: one batch at a time, from any one thread."""

    def __init__(self, path: Path, comm_mapper: CommMapper | None = None,
                 comm_types: Collection[str] | None = None):
        """`comm_mapper` renders a record's communications; `comm_types` are the record types it
        renders (a live view is fine). Without `comm_types` the mapper is asked, per record,
        whether it renders anything (slower)."""
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.conn = schema.connect(self.path)
        migrate.upgrade(self.conn)
        schema.create(self.conn)
        self.comm_mapper = comm_mapper
        self.comm_types = comm_types
        self.position = int(self._meta("position", 0))
        self.reload()
        self._comm_rows: list[tuple] = []
        self._punch_rows: list[tuple] = []
        self.compressor = zstandard.ZstdCompressor(level=comm_chunks.LEVEL)
        self.next_punch_id = int(self._meta("next_punch_id", 1))
        self.page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        self.wal_bytes = 0  # written to the WAL by this writer's commits (frames with their headers)
        self.checkpoint_bytes = 0  # pages copied from the WAL into the database file (at most)
        self._wal_frames, self._backfilled = _wal_index(self.path)
        self._appliers = {
            "attendance.punches": self._punches,
            "terminal.approved": self._release_held,
            "terminal.rejected": self._drop_held,
            "terminal.deleted": self._drop_held,
            TELEMETRY: None,  # apply() stores it itself
            "device.deleted": self._device_deleted,
        }

    def close(self) -> None:
        self.conn.close()

    def _meta(self, name: str, default: Any) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return default if row is None else row[0]

    def _set_meta(self, name: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    # -- batches ---------------------------------------------------------------------------------
    def wants(self, record_type: str) -> bool:
        """False for records that leave no row (only the position moves past them)."""
        if record_type in self._appliers:
            return True
        if self.comm_mapper is None:
            return False
        return self.comm_types is None or record_type in self.comm_types

    def apply(self, records: Iterable[Record], until_seq: int = 0, lines: Sequence[bytes | None] | None = None) -> int:
        """Apply the records after the stored position, in one transaction; returns the new position
        (at least `until_seq`: the records between were left out as `wants` allows). Records at or
        before the position were applied before and are skipped. `lines`: the records' journal
        lines where known (their data is stored as it is there, not encoded again)."""
        conn = self.conn
        position = self.position
        next_punch_id = self.next_punch_id
        conn.execute("BEGIN IMMEDIATE")
        try:
            appliers = self._appliers
            punches = appliers["attendance.punches"]
            comm_mapper, comm_types = self.comm_mapper, self.comm_types
            if comm_mapper is None:
                comm_types = ()
            comm_rows = self._comm_rows
            device_numbers = self._device_numbers
            for done, (record, line) in enumerate(zip(records, lines if lines is not None else repeat(None))):
                if done % windows.YIELD_EVERY == 0:
                    windows.let_others_run(0)
                seq = record.seq
                if seq <= position:
                    continue
                record_type = record.type
                if record_type == TELEMETRY:  # the busiest kind: one line, whoever renders it
                    data = record.data
                    ts = ts_us(record.ts)
                    if ts > self.telemetry_until:
                        self.telemetry_until = ts
                    number = device_numbers.get(data["device_id"])
                    if number is None:
                        number = self._device_number(data["device_id"])
                    text = _dumps(data) if line is None else data_text(line)
                    comm_rows.append((ts, seq, comm_chunks.line(ts, seq, TELEMETRY, text), number))
                    self.pending_telemetry += 1
                    position = seq
                    continue
                applier = appliers.get(record_type)
                if applier is punches:
                    applier(record)
                elif applier is not None:
                    self._flush_rows()  # a deletion, say, must see the rows before it
                    applier(record)
                if record_type in comm_types if comm_types is not None else comm_mapper(record):
                    text = _dumps(record.data) if line is None else data_text(line)
                    ts = ts_us(record.ts)
                    comm_rows.append((ts, seq, comm_chunks.line(ts, seq, record_type, text), _NO_DEVICE))
                position = seq
            self._flush_rows()
            if self.pending_telemetry >= windows.REGROUP_RECORDS or (
                    self.recent_from_ts is not None
                    and self.telemetry_until - self.recent_from_ts >= windows.REGROUP_SPAN_US):
                self.regroup()
            position = max(position, until_seq)
            self._set_meta("position", position)
            self._save_telemetry_meta()
            self._set_meta("next_punch_id", self.next_punch_id)
            conn.execute("COMMIT")
            self._count_wal_writes()
        except BaseException:
            self.next_punch_id = next_punch_id
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.reload()
            raise
        finally:
            self._punch_rows.clear()
            comm_rows.clear()
        self.position = position
        return position

    def reload(self) -> None:
        """What the writer keeps in memory, as the file says (at open, and after a rollback)."""
        self.telemetry_until = int(self._meta("telemetry_until", 0))  # the newest telemetry time applied (us)
        # Telemetry records stored in `communications` and not regrouped yet: the seq before them,
        # how many, and the earliest time of the chunks that hold them.
        self.regrouped_seq = int(self._meta("regrouped_seq", 0))
        self.pending_telemetry = int(self._meta("pending_telemetry", 0))
        self.recent_from_ts: int | None = self._meta("recent_from_ts", None)
        self.hourly_until = int(self._meta("hourly_until", 0))
        # {(hour, device, key): [low, high, total, count]} of the regrouped values of hours without
        # figures yet (about an hour's worth: a few per device and key), rebuilt from the windows.
        self._open_hours = windows.open_hour_figures(self.conn, self.hourly_until)
        self._device_numbers = dict((device_id, n) for n, device_id in self.conn.execute(
            "SELECT n, id FROM device_ids WHERE retired_seq IS NULL"))

    def _save_telemetry_meta(self) -> None:
        self._set_meta("telemetry_until", self.telemetry_until)
        self._set_meta("regrouped_seq", self.regrouped_seq)
        self._set_meta("pending_telemetry", self.pending_telemetry)
        self._set_meta("recent_from_ts", self.recent_from_ts)

    def _count_wal_writes(self) -> None:
        """Add what the last commit wrote to the WAL, and what checkpoints copied, to the counters."""
        frames, backfilled = _wal_index(self.path)
        if frames < self._wal_frames or backfilled < self._backfilled:  # the WAL started over
            self.checkpoint_bytes += max(self._wal_frames - self._backfilled, 0) * self.page_size
            self._wal_frames, self._backfilled = 0, 0
        self.wal_bytes += (frames - self._wal_frames) * (self.page_size + _WAL_FRAME_HEADER)
        self.checkpoint_bytes += (backfilled - self._backfilled) * self.page_size
        self._wal_frames, self._backfilled = frames, backfilled

    def skip_to(self, seq: int) -> None:
        """Record that everything up to `seq` is applied (records that are no longer in the journal)."""
        if seq > self.position:
            self._set_meta("position", seq)
            self.position = seq

    # -- appliers --------------------------------------------------------------------------------
    def _device_number(self, device_id: str) -> int:
        number = self._device_numbers.get(device_id)
        if number is None:
            number = self.conn.execute("INSERT INTO device_ids (id) VALUES (?)", (device_id,)).lastrowid
            self._device_numbers[device_id] = number
        return number

    def _flush_rows(self) -> None:
        """Insert the communication and punch rows gathered since the last flush."""
        rows = self._comm_rows
        if rows:
            rows.sort(key=_by_device)
            comm_chunks.insert(self.conn, self.compressor, rows)
            first = min(row[0] for row in rows)
            if self.recent_from_ts is None or first < self.recent_from_ts:
                self.recent_from_ts = first
            rows.clear()
        rows = self._punch_rows
        if rows:
            execute = self.conn.execute
            for start in range(0, len(rows), PUNCH_ROWS_PER_STATEMENT):
                part = rows[start:start + PUNCH_ROWS_PER_STATEMENT]
                execute(_insert_punches_sql(len(part)), [value for row in part for value in row])
            rows.clear()

    def regroup(self) -> None:
        """Write the telemetry records not regrouped yet as a window (one row per device), then
        give every hour that is over its figures. Inside a transaction, after _flush_rows."""
        if self.pending_telemetry:
            groups: dict[int, list[windows.Entry]] = {}
            numbers, loads = self._device_numbers, orjson.loads
            last_seq = self.regrouped_seq
            for done, (ts, seq, text) in enumerate(windows.pending_records(self.conn, self.regrouped_seq,
                                                                           self.recent_from_ts)):
                if done % windows.YIELD_EVERY == 0:
                    windows.let_others_run(0)
                data = loads(text)
                number = numbers.get(data["device_id"])
                if number is None:
                    number = self._device_number(data["device_id"])
                entries = groups.get(number)
                if entries is None:
                    entries = groups[number] = []
                entries.append((ts, seq, data.get("device_ts"), data.get("payload")))
                if seq > last_seq:
                    last_seq = seq
            late: list[tuple[int, list[windows.Entry]]] = []
            windows.write_window(self.conn, self.compressor, groups,
                                 seen=lambda number, entries: self._add_to_hours(number, entries, late))
            for number, entries in late:
                windows.merge_late_values(self.conn, number, entries)
            self.regrouped_seq = last_seq
        self.pending_telemetry = 0
        self.recent_from_ts = None
        # An hour is over once a later telemetry message came, even if that one was deleted since:
        # the same hours get figures however the records were cut into batches.
        if self.telemetry_until:
            self.close_hours(self.telemetry_until // HOUR_US)

    def _add_to_hours(self, number: int, entries: list[windows.Entry], late: list) -> None:
        """Fold a device's regrouped values (in seq order) into the figures of their open hours; those
        of hours that have their figures already go to `late`."""
        figures, add = self._open_hours, windows.add_value
        closed_before = self.hourly_until
        late_ones = []
        for ts, seq, _device_ts, payload in entries:
            hour = ts // HOUR_US
            if hour < closed_before:
                late_ones.append((ts, seq, payload))
            elif type(payload) is dict:
                for key, value in payload.items():
                    if type(value) is float or type(value) is int:
                        add(figures, (hour, number, key), value)
        if late_ones:
            late.append((number, late_ones))

    def regroup_all(self) -> None:
        """regroup(), with the telemetry bookkeeping saved (for callers other than apply())."""
        self.regroup()
        self._save_telemetry_meta()

    def close_hours(self, until_hour: int) -> None:
        """Store the figures of every open hour before `until_hour` (their values are all regrouped):
        charts over weeks read these instead of every message."""
        if until_hour <= self.hourly_until:
            return
        figures = self._open_hours
        closing = sorted(key for key in figures if key[0] < until_hour)
        windows.store_figures(self.conn, [(*key, *figures.pop(key)) for key in closing])
        self.hourly_until = until_hour
        self._set_meta("hourly_until", until_hour)

    def _device_deleted(self, record: Record) -> None:
        """The device's history becomes unreachable at once (its number is retired; a later message
        from the same id gets a new one); its rows go with retention."""
        number = self._device_numbers.get(record.data["device_id"])
        if number is None:
            return
        self.regroup()  # its records not regrouped yet go with the number they were sent under
        self.conn.execute("UPDATE device_ids SET retired_seq = ? WHERE n = ?", (record.seq, number))
        del self._device_numbers[record.data["device_id"]]

    def _punches(self, record: Record) -> None:
        """Every punch of the record takes the next id, also one that is stored already (a resend,
        left out by INSERT OR IGNORE): ids depend only on the records, never on what a batch held."""
        data = record.data
        seq, received = record.seq, record.ts
        source, connector, tz, held = data["source"], data["connector"], data["tz"], int(bool(data.get("held")))
        punch_id = self.next_punch_id
        append = self._punch_rows.append
        for item in data["punches"]:
            image = item.get("image")
            utc = item["utc"]
            time_text = item["time"]
            append((punch_id, seq, received, source, connector, item["enrollid"], time_text,
                    item.get("key_time") or time_text, tz, utc, datetime.fromisoformat(utc).timestamp(),
                    item["mode"], item["inout"], item["event"], item.get("temp"), item.get("verifymode"),
                    len(image) if image else None, int(bool(item.get("skew"))), held))
            punch_id += 1
        self.next_punch_id = punch_id

    def _release_held(self, record: Record) -> None:
        self.conn.execute("UPDATE punches SET held = 0 WHERE source = ? AND held = 1", (record.data["sn"],))

    def _drop_held(self, record: Record) -> None:
        self.conn.execute("DELETE FROM punches WHERE source = ? AND held = 1", (record.data["sn"],))

    def import_punches(self, rows: Iterable[dict[str, Any]], next_id: int) -> int:
        """Punches kept by an earlier version in the model's snapshot, with their ids. Returns how many were new."""
        added = 0
        with_default = {"key_time": None, "temp": None, "verifymode": None, "image_chars": None, "skew": False,
                        "held": False}
        for row in rows:
            row = with_default | row
            values = (row["id"], row["seq"], row["received"], row["source"], row["connector"], row["enrollid"],
                      row["time"], row["key_time"] or row["time"], row["tz"], row["utc"],
                      datetime.fromisoformat(row["utc"]).timestamp(), row["mode"], row["inout"], row["event"],
                      row["temp"], row["verifymode"], row["image_chars"], int(bool(row["skew"])),
                      int(bool(row["held"])))
            added += self.conn.execute(_INSERT_PUNCH, values).rowcount
        self.next_punch_id = max(self.next_punch_id, next_id)
        self._set_meta("next_punch_id", self.next_punch_id)
        return added

    def import_telemetry(self, items_by_device: dict[str, list[dict[str, Any]]], journal_from: int | None) -> int:
        """Telemetry an earlier version kept in the model's snapshot ({seq, ts, device_ts?, payload} by
        device), as one window; the messages the journal still holds (seq >= `journal_from`) are
        left to it. Returns how many were stored."""
        groups: dict[int, list[windows.Entry]] = {}
        for device_id, items in items_by_device.items():
            kept = [i for i in items if journal_from is None or i["seq"] < journal_from]
            if kept:
                groups[self._device_number(device_id)] = [
                    (ts_us(i["ts"]), i["seq"], i.get("device_ts"), i.get("payload")) for i in kept]
        return windows.write_window(self.conn, self.compressor, groups)

    def set_meta(self, name: str, value: Any) -> None:
        self._set_meta(name, value)

    def meta(self, name: str, default: Any = None) -> Any:
        return self._meta(name, default)


_WAL_FRAME_HEADER = 24
# SQLite's WAL index (the -shm file) starts with its header: mxFrame (frames in the WAL) at byte 16,
# and after two copies of the header (48 bytes each) the checkpoint info: nBackfill (frames copied
# into the database) at byte 96. Native byte order.
_WAL_INDEX = struct.Struct("=16xI76xI")


def _wal_index(path: Path) -> tuple[int, int]:
    """(frames in the WAL, frames of them checkpointed), or (0, 0) when the index cannot be read."""
    try:
        with open(f"{path}-shm", "rb", buffering=0) as shm:
            head = os.pread(shm.fileno(), _WAL_INDEX.size, 0)
    except OSError:
        return 0, 0
    if len(head) < _WAL_INDEX.size:
        return 0, 0
    return _WAL_INDEX.unpack(head)


def open_writer(path: Path, comm_mapper: CommMapper | None = None,
                comm_types: Collection[str] | None = None) -> HistoryWriter:
    """The writer, or sqlite3.DatabaseError when the file is damaged or not a history store."""
    writer = HistoryWriter(path, comm_mapper, comm_types)
    try:
        writer.conn.execute("SELECT count(*) FROM meta").fetchone()
    except sqlite3.DatabaseError:
        writer.close()
        raise
    return writer

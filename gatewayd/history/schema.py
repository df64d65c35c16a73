"""The history database: its file, its tables, and how connections to it are opened.

One file, `<state_dir>/history/history.db`, in WAL mode: one writer (the projection's worker
thread) and any number of readers (queries on the event loop, exports on their own connections)
never wait for each other.

Tables
- `meta`: the last journal seq applied (`position`), the next punch id, the schema version, and
  how far telemetry has been regrouped (`regrouped_seq`) and summed up per hour (`hourly_until`).
- `device_ids`: device id text -> a small integer, so telemetry rows stay short. A deleted device's
  number is retired (`retired_seq`): its rows become unreachable at once and go with retention, and
  the id gets a new number if it sends again.
- `communications`: the records the monitoring stream's items (RX, TX, joins ...) come from, and
  every telemetry record, for `history.communications_days`: the record's time, seq, type and
  data (JSON, as in the journal), the records of one commit compressed together in rows of at most
  CHUNK_RECORDS (comm_chunks.py). Reads render them with the monitor's comm mappers. The telemetry
  records not yet regrouped (seq > `regrouped_seq`) are the recent part of the telemetry history.
- `telemetry_windows` and `telemetry`: telemetry regrouped by device. Once REGROUP_RECORDS
  telemetry records (or an hour of them) have come, they are read back from `communications` and
  written once more as one row per device (`telemetry`: window, device, times, count, the values
  compressed), the window's row saying which times and seqs it spans. Both tables only grow at
  their end: a commit writes the pages its data fills, however many devices sent.
- `telemetry_hourly`: lowest, highest, total and count per hour, device and key, written once per
  hour when the hour is over (hour first: appended, like the others).
- `punches`: every attendance punch; its id is assigned in arrival order and never reused (each
  punch of a record takes one, a resend the store leaves out too: ids may have gaps).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 5
CACHE_KIB = 1024
# The writer checkpoints once the WAL holds this many pages (SQLite's default: 1,000). A checkpoint
# copies each page once however many commits wrote it, so a longer WAL copies fewer pages per
# record (the meta page, index interior pages, the last leaf of each table); it costs this much disk.
WAL_AUTOCHECKPOINT_PAGES = 4000
SOFT_HEAP_LIMIT = 4 * 1024 * 1024
DIRECTORY = "history"
FILENAME = "history.db"

TABLES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_ids (n INTEGER PRIMARY KEY, id TEXT NOT NULL, retired_seq INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS device_ids_live ON device_ids (id) WHERE retired_seq IS NULL;
CREATE TABLE IF NOT EXISTS telemetry_windows (
    id INTEGER PRIMARY KEY, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
    first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry (
    window INTEGER NOT NULL, device INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
    count INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (window, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS telemetry_hourly (
    hour INTEGER NOT NULL, device INTEGER NOT NULL, key TEXT NOT NULL,
    low REAL NOT NULL, high REAL NOT NULL, total REAL NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (hour, device, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS punches (
    id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, received TEXT NOT NULL, source TEXT NOT NULL,
    connector TEXT, enrollid INTEGER NOT NULL, time TEXT NOT NULL, key_time TEXT NOT NULL, tz TEXT NOT NULL,
    utc TEXT NOT NULL, utc_ts REAL NOT NULL, mode INTEGER, inout INTEGER NOT NULL, event INTEGER NOT NULL,
    temp, verifymode, image_chars INTEGER, skew INTEGER NOT NULL, held INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS punches_key ON punches (source, enrollid, key_time, inout, event);
CREATE INDEX IF NOT EXISTS punches_source ON punches (source, id);
CREATE INDEX IF NOT EXISTS punches_enrollid ON punches (enrollid, id);
CREATE INDEX IF NOT EXISTS punches_held ON punches (source) WHERE held = 1;
CREATE TABLE IF NOT EXISTS communications (
    ts INTEGER NOT NULL, seq INTEGER NOT NULL, last_ts INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (ts, seq)) WITHOUT ROWID;
"""


def store_path(state_dir: Path) -> Path:
    return Path(state_dir) / DIRECTORY / FILENAME


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any one thread at a time."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    # Memory stays small whatever the size of the file: 1 MiB of page cache per connection, and
    # SQLite frees caches past 4 MiB for the whole process. Reads are index ranges, writes appends.
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute(f"PRAGMA soft_heap_limit = {SOFT_HEAP_LIMIT}")
    return conn


def create(conn: sqlite3.Connection) -> None:
    """Set the file up (an existing one is left as it is). Raises sqlite3.DatabaseError for a file
    that is not a database or was made by a newer version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"history store schema {version} is newer than this gatewayd ({SCHEMA_VERSION})")
    if 0 < version < SCHEMA_VERSION:  # an earlier layout: the store is rebuilt from the journal
        raise sqlite3.DatabaseError(f"history store schema {version} is older than this gatewayd's ({SCHEMA_VERSION})")
    if version == 0:
        # Pages freed by retention go back to the file system a little at a time (incremental_vacuum).
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL: a commit is not fsynced, a checkpoint is. A power cut may lose the last commits,
    # never corrupt the file; the journal replays what was lost (the stored position says where).
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
    conn.executescript("BEGIN;" + TABLES + f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")


def integrity_problems(conn: sqlite3.Connection, *, quick: bool = False) -> list[str]:
    """[] when SQLite finds the file sound, else its messages."""
    rows = conn.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
    messages = [row[0] for row in rows]
    return [] if messages == ["ok"] else messages

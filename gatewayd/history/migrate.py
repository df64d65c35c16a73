"""Bringing a store of an earlier layout up to this one, in place: the punches and telemetry it
holds may reach back further than the journal. Blocking code, before the writer opens the store."""

from __future__ import annotations

import logging
import sqlite3

import orjson
import zstandard

from . import comm_chunks, schema, telemetry_windows as windows

log = logging.getLogger("gatewayd.history")

_ROWS_PER_FETCH = 2000


def upgrade(conn: sqlite3.Connection) -> None:
    """Migrate the open store when it has a layout this version knows how to bring forward."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 4:
        _from_4(conn)


def _from_4(conn: sqlite3.Connection) -> None:
    """Layout 4 kept telemetry in a table ordered by device (a page write per device per move) and
    hourly figures ordered by device; 5 appends both (telemetry_windows.py)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table in ("device_ids", "telemetry", "telemetry_hourly"):
            conn.execute(f"ALTER TABLE {table} RENAME TO {table}_4")
        for statement in schema.TABLES.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO device_ids (n, id) SELECT n, id FROM device_ids_4 ORDER BY n")
        compressor = zstandard.ZstdCompressor(level=comm_chunks.LEVEL)
        moved = 0
        cursor = conn.execute(
            "SELECT device, ts, seq, device_ts, payload FROM telemetry_4 UNION ALL "
            "SELECT device, ts, seq, device_ts, payload FROM telemetry_recent ORDER BY seq")
        while True:
            rows = cursor.fetchmany(windows.REGROUP_RECORDS)
            if not rows:
                break
            groups: dict[int, list] = {}
            for device, ts, seq, device_ts, payload in rows:
                groups.setdefault(device, []).append((ts, seq, device_ts, orjson.loads(payload)))
            moved += windows.write_window(conn, compressor, groups)
        conn.execute("INSERT INTO telemetry_hourly (hour, device, key, low, high, total, count) "
                     "SELECT hour, device, key, low, high, total, count FROM telemetry_hourly_4 "
                     "ORDER BY hour, device, key")
        for table in ("device_ids_4", "telemetry_4", "telemetry_recent", "telemetry_hourly_4"):
            conn.execute(f"DROP TABLE {table}")
        position = conn.execute("SELECT value FROM meta WHERE name = 'position'").fetchone()
        conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('regrouped_seq', ?)",
                     (position[0] if position else 0,))
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    log.info("history store: brought forward from layout 4 (%d telemetry messages regrouped)", moved)

"""Retention: raw telemetry becomes hourly figures, old rows go, and the file stays under its budget.

Blocking code for the worker thread. Every step is a function of the rows and of `now_us`, so a
store rebuilt from the journal and one fed live agree once both ran it at the same moment.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import comm_chunks, telemetry_windows
from .telemetry_windows import HOUR_US

log = logging.getLogger("gatewayd.history")

DAY_US = 24 * HOUR_US
# Rounds of "drop the oldest day" at most per run: a budget far below the data is reached over several runs.
MAX_BYTE_ROUNDS = 400


@dataclass
class RetentionPolicy:
    telemetry_raw_days: float = 30
    telemetry_hourly_days: float = 400
    communications_days: float = 30
    punch_days: float = 0           # 0: punches are kept for ever
    max_bytes: int = 0              # 0: no budget

    @classmethod
    def from_settings(cls, settings) -> "RetentionPolicy":
        h = settings.history
        return cls(h.telemetry_raw_days, h.telemetry_hourly_days, h.communications_days,
                   settings.attendance.retention_days, h.max_bytes)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def iso(us: int) -> str:
    """Microseconds since the epoch in the journal's form, exactly."""
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def used_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
    return pages * conn.execute("PRAGMA page_size").fetchone()[0]


def drop_raw_before(writer, cutoff_us: int) -> int:
    """Raw messages older than `cutoff_us` (an hour boundary) go; their hours keep their figures."""
    writer.regroup_all()
    writer.close_hours(cutoff_us // HOUR_US)
    removed = telemetry_windows.drop_before(writer.conn, writer.compressor, cutoff_us)
    if cutoff_us // HOUR_US > int(writer.meta("raw_from_hour", 0)):
        writer.set_meta("raw_from_hour", cutoff_us // HOUR_US)
    return removed


def enforce(writer, policy: RetentionPolicy, now_us: int) -> list[dict]:
    """Apply the policy in one transaction. Returns what the byte budget made it drop (for the journal)."""
    conn = writer.conn
    dropped: list[dict] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        writer.regroup_all()
        raw_cutoff = (now_us - int(policy.telemetry_raw_days * DAY_US)) // HOUR_US * HOUR_US
        drop_raw_before(writer, raw_cutoff)
        hourly_cutoff = (now_us - int(policy.telemetry_hourly_days * DAY_US)) // HOUR_US
        conn.execute("DELETE FROM telemetry_hourly WHERE hour < ?", (hourly_cutoff,))
        comm_chunks.drop_before(conn, writer.compressor, now_us - int(policy.communications_days * DAY_US))
        if policy.punch_days > 0:
            conn.execute("DELETE FROM punches WHERE received < ?", (iso(now_us - int(policy.punch_days * DAY_US)),))
        if policy.max_bytes > 0:
            dropped = _within_budget(writer, policy.max_bytes)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        writer.reload()
        raise
    conn.execute("PRAGMA incremental_vacuum")
    return dropped


def _oldest_us(conn: sqlite3.Connection) -> int | None:
    candidates = [
        conn.execute("SELECT min(first_ts) FROM telemetry_windows").fetchone()[0],
        conn.execute("SELECT min(ts) FROM communications").fetchone()[0],
    ]
    hour = conn.execute("SELECT min(hour) FROM telemetry_hourly").fetchone()[0]
    if hour is not None:
        candidates.append(hour * HOUR_US)
    found = [c for c in candidates if c is not None]
    return min(found) if found else None


def _within_budget(writer, max_bytes: int) -> list[dict]:
    """Drop the oldest day of telemetry and communications until the data fits. Punches are never
    dropped for the budget: they have their own retention."""
    conn = writer.conn
    dropped: list[dict] = []
    for _ in range(MAX_BYTE_ROUNDS):
        if used_bytes(conn) <= max_bytes:
            break
        oldest = _oldest_us(conn)
        if oldest is None:
            break
        before = (oldest // DAY_US + 1) * DAY_US
        rows = {
            "telemetry": telemetry_windows.drop_before(conn, writer.compressor, before),
            "telemetry_hourly": conn.execute("DELETE FROM telemetry_hourly WHERE hour < ?",
                                             (before // HOUR_US,)).rowcount,
            "communications": comm_chunks.drop_before(conn, writer.compressor, before),
        }
        dropped.append({"before": iso(before), "rows": {k: v for k, v in rows.items() if v}})
    return dropped

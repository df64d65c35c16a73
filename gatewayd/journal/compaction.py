"""Snapshots and retention.

A snapshot is the whole model at one seq, written atomically. Segments whose every record is
covered by the newest snapshot may then be deleted, oldest first, while they are older than the
history age limit or the journal is over its byte budget. State therefore lives forever (in the
snapshot), history (telemetry, communications, punches) only as long as retention allows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .files import fsync_directory, list_segments, list_snapshots
from .reader import JournalReader
from .record import encode_line, Record, utc_now_iso

log = logging.getLogger("gatewayd.journal")

KEEP_SNAPSHOTS = 2


@dataclass
class CompactionResult:
    snapshot_seq: int
    snapshot_bytes: int
    segments_deleted: list[str]
    snapshots_deleted: list[str]


def encode_snapshot(seq: int, state_dict: dict) -> bytes:
    return encode_line(Record(seq, utc_now_iso(), "snapshot", {"format": 1, "state": state_dict}))


def write_snapshot_and_prune(directory: Path, seq: int, encoded: bytes, *, max_age_seconds: float,
                             max_bytes: int, keep_after_seq: int | None = None,
                             now: float | None = None) -> CompactionResult:
    """Blocking: run in a worker thread. `encoded` comes from `encode_snapshot` on the event loop.

    `keep_after_seq`: the lowest cursor of the journal's readers; a segment holding any record after
    it stays, whatever its age or the byte budget."""
    from .files import snapshot_path, write_atomically

    now = time.time() if now is None else now
    path = snapshot_path(directory, seq)
    write_atomically(path, encoded)
    deleted: list[str] = []
    segments = list_segments(directory)
    sizes = {p: p.stat().st_size for _, p in segments}
    total = sum(sizes.values())
    # A segment is covered when the next segment starts at or before seq + 1.
    for index in range(len(segments) - 1):
        _, current = segments[index]
        next_first, _ = segments[index + 1]
        last_in_segment = next_first - 1
        if last_in_segment > seq or (keep_after_seq is not None and last_in_segment > keep_after_seq):
            break
        too_old = now - current.stat().st_mtime > max_age_seconds
        if not (too_old or total > max_bytes):
            break
        total -= sizes[current]
        current.unlink()
        deleted.append(current.name)
    old_snapshots = list_snapshots(directory)[:-KEEP_SNAPSHOTS]
    for _, old in old_snapshots:
        old.unlink()
    if deleted or old_snapshots:
        fsync_directory(directory)
    return CompactionResult(seq, len(encoded), deleted, [p.name for _, p in old_snapshots])


def latest_snapshot_seq(directory: Path) -> int:
    snapshots = list_snapshots(directory)
    return snapshots[-1][0] if snapshots else 0


__all__ = ["CompactionResult", "encode_snapshot", "write_snapshot_and_prune", "latest_snapshot_seq",
           "JournalReader"]

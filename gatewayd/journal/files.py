"""Where journal segments and snapshots live, and how they are named.

    <state_dir>/journal/LOCK
    <state_dir>/journal/segment-<first seq, 16 digits>.jsonl
    <state_dir>/journal/snapshot-<seq, 16 digits>.json    (state after applying that seq)
    <state_dir>/journal/REPAIRS                           (seq gaps accepted by `journal repair`)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SEGMENT = re.compile(r"^segment-(\d{16})\.jsonl$")
_SNAPSHOT = re.compile(r"^snapshot-(\d{16})\.json$")


def segment_path(directory: Path, first_seq: int) -> Path:
    return directory / f"segment-{first_seq:016d}.jsonl"


def snapshot_path(directory: Path, seq: int) -> Path:
    return directory / f"snapshot-{seq:016d}.json"


def _numbered(directory: Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for name in os.listdir(directory):
        match = pattern.match(name)
        if match:
            found.append((int(match.group(1)), directory / name))
    return sorted(found)


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """(first seq, path) of every segment, oldest first."""
    return _numbered(directory, _SEGMENT)


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    """(seq, path) of every snapshot, oldest first."""
    return _numbered(directory, _SNAPSHOT)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """temp file, fsync, rename, fsync the directory: the file is either old or new, never torn."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_directory(path.parent)

"""Where journal segments and snapshots live, and how they are named.

    <state_dir>/journal/LOCK
    <state_dir>/journal/segment-<first seq, 16 digits>.jsonl
    <state_dir>/journal/segment-<first seq, 16 digits>.jsonl.zst  (a closed segment, compressed)
    <state_dir>/journal/snapshot-<seq, 16 digits>.json    (state after applying that seq)
    <state_dir>/journal/REPAIRS                           (seq gaps accepted by `journal repair`)
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

_SEGMENT = re.compile(r"^segment-(\d{16})\.jsonl(\.zst)?$")
COMPRESSED_SUFFIX = ".zst"
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
    """(first seq, path) of every segment, oldest first. While a segment is being compressed both
    files exist for a moment, each complete: the plain one is listed."""
    segments: dict[int, Path] = {}
    for first, path in _numbered(directory, _SEGMENT):
        if first not in segments or not is_compressed(path):
            segments[first] = path
    return sorted(segments.items())


def is_compressed(path: Path) -> bool:
    return path.name.endswith(COMPRESSED_SUFFIX)


def read_segment(path: Path) -> bytes:
    """A segment's lines, whether it is plain or compressed. A segment compressed (or its plain copy
    removed) between listing and reading is read from its other file."""
    try:
        return _read_either(path)
    except FileNotFoundError:
        other = path.with_name(path.name[:-len(COMPRESSED_SUFFIX)]) if is_compressed(path) \
            else path.with_name(path.name + COMPRESSED_SUFFIX)
        return _read_either(other)


def _read_either(path: Path) -> bytes:
    data = path.read_bytes()
    if is_compressed(path):
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def write_segment(path: Path, data: bytes) -> None:
    """Replace a segment's content atomically (repair), compressing it when its name says so."""
    if is_compressed(path):
        import zstandard

        data = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL).compress(data)
    write_atomically(path, data)


# zstd's level 3: about 20 MB/s of journal on a Raspberry Pi 4 core, JSON lines shrink 6-10 times.
COMPRESSION_LEVEL = 3


def compress_segment(path: Path) -> Path:
    """Blocking: write `<segment>.zst` (fsynced), then remove the plain file. Returns the new path."""
    import zstandard

    target = path.with_name(path.name + COMPRESSED_SUFFIX)
    # Streamed: a whole segment and its compressed copy were 19 MiB at once (16 MiB segments), this
    # takes about 3 MiB for the same CPU time.
    with open(path, "rb") as source, atomic_writer(target) as handle:
        zstandard.ZstdCompressor(level=COMPRESSION_LEVEL).copy_stream(source, handle,
                                                                     size=os.fstat(source.fileno()).st_size)
    path.unlink()
    fsync_directory(path.parent)
    return target


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
    with atomic_writer(path) as handle:
        handle.write(data)


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A file to write `path`'s new content into, as write_atomically does: in place once the block
    ends without an exception."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb", opener=lambda name, flags: os.open(name, flags, 0o600)) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)

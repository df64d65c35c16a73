"""The `communications` table's rows: the records of one commit, compressed together.

Records are kept one per line, `<ts> <seq> <type> <data JSON>` (the JSON has no raw newline), in
chunks of at most CHUNK_RECORDS, each compressed with zstd: a record costs a few dozen bytes and a
fraction of a row insert. A row's key is the earliest time and seq of its records (a chunk holds records in any
order), with the time span it holds (`ts` to `last_ts`: their time may step back). Blocking code.
"""

from __future__ import annotations

import heapq
import sqlite3
from typing import Iterable, Iterator

import zstandard

CHUNK_RECORDS = 1000
LEVEL = 1

Row = tuple[int, int, str, bytes]  # (ts us, seq, record type, data JSON)

_INSERT = "INSERT OR IGNORE INTO communications (ts, seq, last_ts, count, data) VALUES (?, ?, ?, ?, ?)"


def line(ts: int, seq: int, record_type: str, data: bytes) -> bytes:
    return b"%d %d %s %s" % (ts, seq, record_type.encode(), data)


def insert(conn: sqlite3.Connection, compressor: zstandard.ZstdCompressor, rows: list[tuple]) -> None:
    """Store (ts, seq, line, ...) rows as chunks, in the order given (records of one commit: the
    seqs of a later call are all higher)."""
    chunks = []
    for start in range(0, len(rows), CHUNK_RECORDS):
        part = rows[start:start + CHUNK_RECORDS]
        times = [row[0] for row in part]
        chunks.append((min(times), min(row[1] for row in part), max(times), len(part),
                       compressor.compress(b"\n".join([row[2] for row in part]))))
    conn.executemany(_INSERT, chunks)


def decode(blob: bytes, needle: bytes | None = None) -> list[Row]:
    """A chunk's records; with `needle`, only those whose line holds it (a chunk without it is not split)."""
    text = zstandard.ZstdDecompressor().decompress(blob)
    if needle is not None and needle not in text:
        return []
    out = []
    for line in text.split(b"\n"):
        if needle is not None and needle not in line:
            continue
        ts, seq, record_type, data = line.split(b" ", 3)
        out.append((int(ts), int(seq), record_type.decode(), data))
    return out


def ordered(chunks: Iterable[tuple[int, bytes]]) -> Iterator[Row]:
    """Records in (ts, seq) order from chunks given in order of their first time. A record is held
    back only until no chunk still to come can hold an earlier one."""
    heap: list[Row] = []
    for first_ts, blob in chunks:
        while heap and heap[0][0] < first_ts:
            yield heapq.heappop(heap)
        for row in decode(blob):
            heapq.heappush(heap, row)
    while heap:
        yield heapq.heappop(heap)


def drop_before(conn: sqlite3.Connection, compressor: zstandard.ZstdCompressor, cutoff: int) -> int:
    """Remove the records older than `cutoff`; returns how many. A chunk holding records on both
    sides keeps the newer ones (so the same records remain however they were cut into chunks)."""
    dropped = conn.execute("SELECT coalesce(sum(count), 0) FROM communications WHERE last_ts < ?",
                           (cutoff,)).fetchone()[0]
    conn.execute("DELETE FROM communications WHERE last_ts < ?", (cutoff,))
    straddling = conn.execute("SELECT ts, seq, data FROM communications WHERE ts < ?", (cutoff,)).fetchall()
    for ts, seq, blob in straddling:
        rows = decode(blob)
        kept = [(t, s, line(t, s, kind, data)) for t, s, kind, data in rows if t >= cutoff]
        dropped += len(rows) - len(kept)
        conn.execute("DELETE FROM communications WHERE ts = ? AND seq = ?", (ts, seq))
        insert(conn, compressor, kept)
    return dropped


def every_record(conn: sqlite3.Connection) -> list[Row]:
    """All stored records, in (ts, seq) order (tests and checks)."""
    return list(ordered(conn.execute("SELECT ts, data FROM communications ORDER BY ts, seq")))

"""Reading on from where the last read stopped: how a journal follower that is behind the hub's window
takes the next records from the plain (uncompressed) segments without decoding again what it has
read already.

`SegmentTail` remembers a segment and the byte offset just after the line of the last record it
returned. The next read seeks there, decodes only the complete lines that follow (at most the ones
asked for, none after `until_seq`: lines after that may not be durable yet), and moves on to the next
segment once its segment is sealed and read to the end. Finding the place the first time (or after
the follower took records from elsewhere) scans the line starts for their seq, without decoding.

Anything unusual (a compressed segment, a line that does not check out, a gap or a seq out of order,
a file that went away) makes `read` answer None: the caller then reads through
`JournalReader.records`, which checks everything and says what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

from .files import is_compressed, list_segments
from .record import Record, RecordError, decode_lines

CHUNK_BYTES = 256 * 1024  # read at a time (more when a single line is longer)

_LINE_START_SEQ = re.compile(rb'^\{"seq":(\d+),', re.MULTILINE)


class SegmentTail:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._first = -1  # the first seq of the segment read (its name)
        self._path: Path | None = None
        self._offset = 0  # where the line after `_after` begins
        self._after = -1  # the seq of the last record returned (or found) before `_offset`

    def read(self, after_seq: int, until_seq: int, max_records: int) -> list[Record] | None:
        """Up to `max_records` records with after_seq < seq <= until_seq, in order; None when this
        reader cannot tell (the caller reads the checked way)."""
        try:
            if self._path is None or self._after != after_seq:
                if not self._locate(after_seq):
                    return None
            while True:
                segments = list_segments(self.directory)
                newer = [(first, path) for first, path in segments if first > self._first]
                lines, ends = self._complete_lines(max_records)
                if lines:
                    break
                if not newer:
                    return None  # the records the hub says are durable are not where expected
                # Sealed (a newer segment exists, so nothing more is written here) and read to its end.
                first, path = newer[0]
                if is_compressed(path):
                    return None
                self._path, self._first, self._offset = path, first, 0
        except FileNotFoundError:
            self._path = None
            return None
        try:
            records = decode_lines(lines)
        except RecordError:
            return None
        taken = 0
        for record in records:
            if record.seq > until_seq:
                break
            if record.seq != after_seq + 1 + taken:
                break  # a gap or a seq out of order: the checked way tells what it is
            taken += 1
        if not taken:
            return None
        self._offset = ends[taken - 1]
        self._after = after_seq + taken
        return records[:taken]

    def _complete_lines(self, max_records: int) -> tuple[list[bytes], list[int]]:
        """The complete lines from the offset (without their newlines) and where each one ends."""
        with open(self._path, "rb") as f:
            f.seek(self._offset)
            size = CHUNK_BYTES
            data = f.read(size)
            while data and b"\n" not in data:
                more = f.read(size)
                if not more:
                    break
                data += more
                size *= 2
        end = data.rfind(b"\n")
        if end < 0:
            return [], []
        lines = data[:end].split(b"\n", max_records)[:max_records]
        ends = []
        position = self._offset
        for line in lines:
            position += len(line) + 1
            ends.append(position)
        return lines, ends

    def _locate(self, after_seq: int) -> bool:
        """Place the offset at the line after `after_seq`'s, scanning line starts."""
        segments = list_segments(self.directory)
        holder = None
        for first, path in segments:
            if first <= after_seq + 1:
                holder = (first, path)
        if holder is None or is_compressed(holder[1]):
            self._path = None
            return False
        first, path = holder
        start = self._offset if (path == self._path and self._after <= after_seq) else 0
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
        found = len(data[:data.rfind(b"\n") + 1])  # past the last complete line when none follows
        for match in _LINE_START_SEQ.finditer(data):
            if int(match.group(1)) > after_seq:
                found = match.start()
                break
        self._path, self._first, self._offset, self._after = path, first, start + found, after_seq
        return True

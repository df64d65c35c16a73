"""Reading the journal back: snapshots, replay, verification, tail recovery and repair."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import count
from operator import eq, itemgetter
from pathlib import Path
from typing import Iterator

from .files import is_compressed, list_segments, list_snapshots, read_segment, write_atomically, write_segment
from .record import (
    Record, RecordError, decode_line, decode_lines, decode_unterminated, encode_line, lines_check_out,
)

log = logging.getLogger("gatewayd.journal")

REPAIRS_FILE = "REPAIRS"
_seq_of = itemgetter(0)
# Lines of a segment decoded at once. Small enough that a chunk's records, garbage as soon as they
# are applied, fit in the few allocator arenas in use: with 1 MiB chunks a replay of 100,000 records
# left ~10 MiB of free pools in arenas that a handful of surviving state objects kept from being
# returned (the RSS of a first start on a long journal); with 64 KiB, ~1.3 MiB, at the same speed.
CHUNK_BYTES = 64 * 1024


class CorruptJournal(RuntimeError):
    """Damage before the tail: startup must stop until an operator runs `journal repair`."""

    def __init__(self, path: Path, line: int, after_seq: int, reason: str):
        super().__init__(
            f"{path}: line {line} (after seq {after_seq}): {reason}; "
            "run `gatewayd journal repair` to set the damaged lines aside"
        )
        self.path = path
        self.line = line
        self.after_seq = after_seq
        self.reason = reason


@dataclass
class Snapshot:
    seq: int
    ts: str
    state: dict
    path: Path


@dataclass
class TailCut:
    path: Path
    kept_bytes: int
    cut_bytes: int
    side_file: Path | None  # None when the copy could not be written (disk full)


@dataclass
class VerifyReport:
    segments: int = 0
    records: int = 0
    first_seq: int | None = None
    last_seq: int = 0
    snapshots: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    torn_tail: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    # A file that ends with "\n" yields a final empty element; anything else is an unterminated tail.
    return lines


def _consecutive(records: list[Record], expected: int | None) -> bool:
    """Seqs first, first + 1, … (first being `expected` when given)."""
    first = records[0].seq
    if type(first) is not int or expected is not None and first != expected:
        return False
    return all(map(eq, map(_seq_of, records), count(first)))


def _chunks(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of pieces of about CHUNK_BYTES of whole lines (the last may lack its newline)."""
    start, size = 0, len(data)
    while start < size:
        end = data.find(b"\n", start + CHUNK_BYTES)
        end = size if end < 0 else end + 1
        yield start, end
        start = end


def _lines(data: bytes, start: int, end: int) -> list[bytes]:
    """The lines of data[start:end], without the empty piece after a final newline."""
    lines = data[start:end].split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _last_seq(lines: list[bytes]) -> float:
    """The seq of the last of these lines when it is a sound record, else infinity (decode them all)."""
    try:
        return decode_unterminated(lines[-1]).seq if lines else float("inf")
    except RecordError:
        return float("inf")


class JournalReader:
    """Reads one journal directory. Never writes, except in `cut_torn_tail` and `repair`."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.unusable_snapshots: list[str] = []  # "<file>: <reason>", filled by load_snapshot

    # -- snapshots ---------------------------------------------------------------------------
    def load_snapshot(self, max_seq: int | None = None) -> Snapshot | None:
        """The newest snapshot that checks out (optionally at or before max_seq)."""
        for seq, path in reversed(list_snapshots(self.directory)):
            if max_seq is not None and seq > max_seq:
                continue
            try:
                record = decode_line(path.read_bytes())
                if record.type != "snapshot" or record.seq != seq:
                    raise RecordError("not a snapshot of the seq in its name")
                return Snapshot(seq, record.ts, record.data["state"], path)
            except (OSError, RecordError, KeyError, TypeError) as exc:
                log.warning("snapshot %s is unusable (%s); trying an older one", path.name, exc)
                self.unusable_snapshots.append(f"{path.name}: {exc}")
        return None

    @staticmethod
    def write_snapshot(directory: Path, seq: int, ts: str, state: dict) -> Path:
        from .files import snapshot_path

        path = snapshot_path(Path(directory), seq)
        line = encode_line(Record(seq, ts, "snapshot", {"format": 1, "state": state}))
        write_atomically(path, line)
        return path

    # -- accepted gaps ------------------------------------------------------------------------
    def accepted_gaps(self) -> set[int]:
        """Seqs after which `journal repair` accepted a gap."""
        path = self.directory / REPAIRS_FILE
        gaps: set[int] = set()
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    gaps.add(int(json.loads(line)["after_seq"]))
                except (ValueError, KeyError, TypeError):
                    continue
        return gaps

    # -- replay ---------------------------------------------------------------------------------
    def records(self, after_seq: int = 0, until_seq: int | None = None,
                contiguous: bool = False) -> Iterator[Record]:
        """Every record with after_seq < seq (<= until_seq), in order, checked.

        A damaged final line of the last segment is a torn write: it is skipped here (the writer
        cuts it on open). Damage anywhere else raises CorruptJournal. With `contiguous`, the first
        record must be after_seq + 1 (replay on top of a snapshot must not skip anything).
        """
        segments = list_segments(self.directory)
        gaps = self.accepted_gaps()
        expected = None
        start = 0
        for index, (first_seq, _) in enumerate(segments):
            if first_seq <= after_seq + 1:
                start = index
        for index in range(start, len(segments)):
            first_seq, path = segments[index]
            is_last = index == len(segments) - 1
            # A segment is decoded a chunk at a time: the records of a whole segment (tens of MiB
            # as objects) would raise the process's memory for good, freed or not.
            for first_line, records in self._segment_chunks(path, is_last, after_seq):
                if records and _consecutive(records, expected):
                    # The common case, checked for the whole chunk at once: no seq to complain about.
                    first = records[0].seq
                    skip = min(max(after_seq + 1 - first, 0), len(records))
                    if not contiguous or skip == len(records) or records[skip].seq == after_seq + 1:
                        expected = records[-1].seq + 1
                        if skip < len(records):
                            contiguous = False
                            if until_seq is not None and records[-1].seq > until_seq:
                                yield from records[skip:max(until_seq + 1 - first, skip)]
                                return
                            yield from records[skip:] if skip else records
                        continue
                for line, record in enumerate(records, first_line):
                    # Before the first record read, what precedes it is what the segment's name says.
                    previous = segments[start][0] - 1 if expected is None else expected - 1
                    if expected is not None and record.seq != expected:
                        if not (record.seq > expected and expected - 1 in gaps):
                            raise CorruptJournal(path, line, expected - 1, f"expected seq {expected}, found {record.seq}")
                    expected = record.seq + 1
                    if record.seq <= after_seq:
                        continue
                    # An accepted gap that spans after_seq (e.g. a snapshot inside it) bridges it too.
                    bridged = previous is not None and previous <= after_seq and previous in gaps
                    if contiguous and record.seq != after_seq + 1 and after_seq not in gaps and not bridged:
                        reason = f"records {after_seq + 1} to {record.seq - 1} are missing"
                        if self.unusable_snapshots:
                            reason += f" (unusable snapshot {'; '.join(self.unusable_snapshots)})"
                        raise CorruptJournal(path, line, after_seq, reason)
                    contiguous = False
                    if until_seq is not None and record.seq > until_seq:
                        return
                    yield record

    def _segment_chunks(self, path: Path, is_last: bool, skip_until: int = 0) -> Iterator[tuple[int, list[Record]]]:
        """A segment's records, a chunk of about CHUNK_BYTES of lines at a time, each with the line
        number of its first record (this is the hot path of startup: each chunk is decoded at once).
        A chunk whose last record (checked) is at or before `skip_until` is not decoded: after a
        snapshot, a start reads only the records it replays."""
        data = read_segment(path)
        size = len(data)
        line = 1
        last_seq = 0
        for start, end in _chunks(data):
            lines = _lines(data, start, end)
            if skip_until and end < size and _last_seq(lines) <= skip_until:
                line += len(lines)
                continue
            try:
                records = decode_lines(lines)
            except RecordError:
                # Line by line from here to the end of the segment, to name the damage (or drop a torn tail).
                lines = _lines(data, start, size)
                end = size
                records = self._decode_until_damage(path, lines, is_last, line, last_seq)
            if records:
                last_seq = records[-1].seq
            yield line, records
            line += len(lines)
            if end == size:
                break
        if size and not data.endswith(b"\n") and not is_last:
            raise CorruptJournal(path, line - 1, last_seq, "sealed segment ends without a newline")

    def _decode_until_damage(self, path: Path, lines: list[bytes], is_last: bool, first_line: int = 1,
                             seq_before: int = 0) -> list[Record]:
        """One line at a time, to name the first bad one; a torn tail of the last segment is dropped."""
        records: list[Record] = []
        try:
            for line in lines:
                records.append(decode_unterminated(line))
        except RecordError as exc:
            number = len(records)
            if is_last and self._only_damage_follows(lines, number):
                return records
            raise CorruptJournal(path, first_line + number, records[-1].seq if records else seq_before,
                                 str(exc)) from None
        return records

    @staticmethod
    def _only_damage_follows(lines: list[bytes], number: int) -> bool:
        for later in lines[number + 1:]:
            if later == b"":
                continue
            try:
                decode_line(later)
                return False
            except RecordError:
                continue
        return True

    def last_seq(self) -> int:
        """Seq of the last good record in the segments (0 when there are none)."""
        segments = list_segments(self.directory)
        for first_seq, path in reversed(segments):
            last = None
            for _, records in self._segment_chunks(path, is_last=path == segments[-1][1]):
                if records:
                    last = records[-1].seq
            if last is not None:
                return last
        snapshot = self.load_snapshot()
        return snapshot.seq if snapshot else 0

    # -- torn tail -------------------------------------------------------------------------------
    def cut_torn_tail(self) -> TailCut | None:
        """Cut a damaged tail off the last segment, keeping a copy beside it. Returns what was cut."""
        segments = list_segments(self.directory)
        if not segments:
            return None
        path = segments[-1][1]
        if is_compressed(path):
            return None  # only a closed segment is compressed, and it was complete when it closed
        data = path.read_bytes()
        if data.endswith(b"\n") and all(lines_check_out(_lines(data, start, end)) for start, end in _chunks(data)):
            return None  # nothing torn: the common case, checked at once
        good_end = 0
        offset = 0
        for line in data.split(b"\n"):
            end = offset + len(line) + 1
            if end > len(data):  # unterminated last piece
                if line:
                    try:
                        decode_line(line)
                        good_end = len(data)  # complete record missing only its newline
                    except RecordError:
                        pass
                break
            if line:
                try:
                    decode_line(line)
                    good_end = end
                except RecordError:
                    break
            offset = end
        if good_end >= len(data):
            if data and not data.endswith(b"\n"):
                with open(path, "ab") as handle:
                    handle.write(b"\n")
                    handle.flush()
                    os.fsync(handle.fileno())
            return None
        # Only cut when nothing valid follows; otherwise this is mid-file damage for repair.
        rest = data[good_end:].split(b"\n")
        for line in rest:
            if line:
                try:
                    decode_line(line)
                    return None
                except RecordError:
                    pass
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        side: Path | None = path.with_name(f"{path.name}.torn-{stamp}")
        try:
            side.write_bytes(data[good_end:])
        except OSError as exc:
            # A torn tail was never acknowledged: cutting it without a copy loses nothing anyone was
            # promised, while refusing to start on a full disk would leave every device unanswered.
            log.warning("journal: cannot keep a copy of the torn tail of %s (%s); cutting it anyway",
                        path.name, exc.strerror or exc)
            side.unlink(missing_ok=True)
            side = None
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
            handle.flush()
            os.fsync(handle.fileno())
        return TailCut(path, good_end, len(data) - good_end, side)

    # -- verify and repair --------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        report = VerifyReport()
        report.snapshots = [seq for seq, _ in list_snapshots(self.directory)]
        segments = list_segments(self.directory)
        report.segments = len(segments)
        gaps = self.accepted_gaps()
        expected = None
        for index, (first_seq, path) in enumerate(segments):
            is_last = index == len(segments) - 1
            data = read_segment(path)
            lines = _split_lines(data)
            for number, line in enumerate(lines):
                if number == len(lines) - 1 and line == b"":
                    break
                try:
                    record = decode_line(line)
                except RecordError as exc:
                    if is_last and self._only_damage_follows(lines, number):
                        report.torn_tail = f"{path.name}: line {number + 1}: {exc} (cut at next start)"
                        break
                    report.problems.append(f"{path.name}: line {number + 1}: {exc}")
                    continue
                if expected is not None and record.seq != expected and not (
                    record.seq > expected and expected - 1 in gaps
                ):
                    report.problems.append(
                        f"{path.name}: line {number + 1}: expected seq {expected}, found {record.seq}"
                    )
                if report.first_seq is None:
                    report.first_seq = record.seq
                expected = record.seq + 1
                report.last_seq = record.seq
                report.records += 1
        for seq, path in list_snapshots(self.directory):
            try:
                decode_line(path.read_bytes())
            except (OSError, RecordError) as exc:
                report.problems.append(f"{path.name}: {exc}")
        return report

    def repair(self) -> list[str]:
        """Set every damaged line aside (into `<segment>.dropped-<time>`), accept the seq gaps
        they leave (and gaps left by lost lines, e.g. a segment cut short), and cut a torn tail.
        Returns one line per thing dropped."""
        dropped: list[str] = []
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        cut = self.cut_torn_tail()
        if cut:
            kept = f"moved to {cut.side_file.name}" if cut.side_file else "cut (no room for a copy)"
            dropped.append(f"{cut.path.name}: torn tail of {cut.cut_bytes} bytes {kept}")
        accepted = self.accepted_gaps()
        prev_seq: int | None = None  # the last good record before the current line, across segments
        for first_seq, path in list_segments(self.directory):
            if prev_seq is None:
                prev_seq = first_seq - 1
            data = read_segment(path)
            keep: list[bytes] = []
            bad: list[bytes] = []
            gaps_after: list[int] = []
            for number, line in enumerate(data.split(b"\n")):
                if not line:
                    continue
                try:
                    record = decode_line(line)
                except RecordError as exc:
                    bad.append(line + b"\n")
                    if prev_seq not in accepted:
                        gaps_after.append(prev_seq)
                        accepted.add(prev_seq)
                    dropped.append(f"{path.name}: line {number + 1} after seq {prev_seq}: {exc}")
                    continue
                if record.seq > prev_seq + 1 and prev_seq not in accepted:
                    gaps_after.append(prev_seq)
                    accepted.add(prev_seq)
                    dropped.append(f"{path.name}: line {number + 1}: records {prev_seq + 1} to {record.seq - 1} "
                                   "are missing; gap accepted")
                prev_seq = record.seq
                keep.append(line + b"\n")
            if gaps_after:
                with open(self.directory / REPAIRS_FILE, "a") as handle:
                    for after in gaps_after:
                        handle.write(json.dumps({"after_seq": after, "segment": path.name, "at": stamp}) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
            if bad:
                side = path.with_name(f"{path.name}.dropped-{stamp}")
                with open(side, "ab") as handle:
                    handle.write(b"".join(bad))
            if bad or not data.endswith(b"\n") and data:
                write_segment(path, b"".join(keep))
        return dropped

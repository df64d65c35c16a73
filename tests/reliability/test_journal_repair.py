"""Regressions found by the corruption campaign: each one once made a damaged journal either
unrepairable or its refusal imprecise."""

from __future__ import annotations

import shutil

from gatewayd.journal.files import list_segments, list_snapshots
from gatewayd.journal.reader import CorruptJournal, JournalReader
from gatewayd.gateway import load_state
from tests.reliability.journal_damage import line_spans

import pytest


@pytest.fixture
def journal(pristine, tmp_path):
    source, states = pristine["full"]
    work = tmp_path / "journal"
    shutil.copytree(source, work)
    return work, states


def middle_segment(work, spanning_snapshot: bool = False):
    """A sealed segment that replay reads: after the newest snapshot, or the one holding it."""
    segments = list_segments(work)
    snapshot = list_snapshots(work)[-1][0]
    for index in range(len(segments) - 1):
        first, path = segments[index]
        nxt = segments[index + 1][0]
        if (first <= snapshot < nxt - 1) if spanning_snapshot else first > snapshot:
            return path
    raise AssertionError("no suitable segment")


def refusal(work) -> CorruptJournal:
    with pytest.raises(CorruptJournal) as info:
        load_state(work)
    return info.value


def test_damaged_first_line_of_a_segment_repairs_to_a_gap_after_the_previous_segment(journal):
    work, states = journal
    path = list_segments(work)[-1][1]
    data = bytearray(path.read_bytes())
    data[5] ^= 0x40
    path.write_bytes(bytes(data))
    # valid records follow the damaged one, so this is not a torn tail
    exc = refusal(work)
    assert exc.line == 1 and path.name in str(exc)
    JournalReader(work).repair()
    state, _ = load_state(work)
    assert state.seq == states.last_seq


def test_a_segment_cut_at_a_line_boundary_is_a_gap_repair_accepts(journal):
    work, states = journal
    path = middle_segment(work)
    spans = line_spans(path)
    path.write_bytes(path.read_bytes()[:spans[len(spans) // 2].start])
    exc = refusal(work)
    assert exc.line >= 1 and "expected seq" in str(exc)
    dropped = JournalReader(work).repair()
    assert any("are missing" in line for line in dropped)
    state, _ = load_state(work)
    assert state.seq == states.last_seq
    assert JournalReader(work).verify().ok


def test_a_sealed_segment_that_lost_only_its_last_newline_is_repaired(journal):
    work, states = journal
    path = middle_segment(work)
    path.write_bytes(path.read_bytes()[:-1])
    exc = refusal(work)
    assert "without a newline" in str(exc)
    JournalReader(work).repair()
    state, _ = load_state(work)
    assert state.seq == states.last_seq


def test_an_accepted_gap_that_spans_the_snapshot_does_not_block_the_start(journal):
    work, states = journal
    path = middle_segment(work, spanning_snapshot=True)
    spans = line_spans(path)
    path.write_bytes(path.read_bytes()[:spans[0].end + 5])  # first line kept, the rest cut mid-line
    refusal(work)
    JournalReader(work).repair()
    state, _ = load_state(work)
    assert state.seq == states.last_seq


def test_a_lost_snapshot_is_named_when_the_records_it_covered_are_gone(pristine, tmp_path):
    source, _ = pristine["pruned"]
    work = tmp_path / "journal"
    shutil.copytree(source, work)
    newest = list_snapshots(work)[-1][1]
    newest.write_bytes(newest.read_bytes()[:100])
    exc = refusal(work)
    assert exc.line >= 1 and "are missing" in str(exc) and newest.name in str(exc)

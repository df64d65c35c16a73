"""Replay equals live; torn tails are cut; damage before the tail refuses startup."""

import json
import os

import pytest
import trio
from hypothesis import HealthCheck, given, settings, strategies as st

from gatewayd.hub import Hub
from gatewayd.journal.compaction import encode_snapshot, write_snapshot_and_prune
from gatewayd.journal.files import list_segments
from gatewayd.journal.reader import CorruptJournal, JournalReader
from gatewayd.journal.record import Record, encode_line
from gatewayd.journal.writer import JournalWriter

from .helpers import make_test_state

operations = st.lists(
    st.one_of(
        st.tuples(st.just("test.add"), st.fixed_dictionaries(
            {"key": st.sampled_from("abcde"), "amount": st.integers(-1000, 1000)})),
        st.tuples(st.just("test.reset"), st.fixed_dictionaries({"key": st.sampled_from("abcde")})),
        st.tuples(st.just("apikey.created"), st.fixed_dictionaries(
            {"key_id": st.text("0123456789abcdef", min_size=8, max_size=8), "name": st.text(max_size=8),
             "hash": st.just("sha256:00")})),
        st.tuples(st.just("unknown.type"), st.fixed_dictionaries({"x": st.integers(-2**63, 2**63 - 1)})),
    ),
    min_size=1, max_size=60,
)


def replay(directory, until=None):
    reader = JournalReader(directory)
    state = make_test_state()
    snapshot = reader.load_snapshot(max_seq=until)
    if snapshot:
        state.restore(snapshot.state)
    for record in reader.records(after_seq=state.seq, until_seq=until, contiguous=True):
        state.apply(record)
    return state


async def run_live(directory, ops, snapshot_at=None, segment_bytes=2048):
    state = make_test_state()
    writer = JournalWriter(directory, next_seq=1, segment_bytes=segment_bytes, flush_interval=0)
    hub = Hub(state, writer)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for index, (type_, data) in enumerate(ops):
            await hub.publish(type_, data, durable=index % 3 == 0)
            if snapshot_at is not None and index == snapshot_at:
                await hub.publish("test.add", {"key": "z", "amount": 0})
                encoded = encode_snapshot(state.seq, json.loads(json.dumps(state.snapshot())))
                write_snapshot_and_prune(directory, state.seq, encoded, max_age_seconds=0, max_bytes=1 << 30)
        await writer.close()
    writer.close_files()
    return state


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, data=st.data())
def test_live_replay_and_snapshot_replay_agree(tmp_path_factory, ops, data):
    directory = tmp_path_factory.mktemp("j")
    snapshot_at = data.draw(st.one_of(st.none(), st.integers(0, len(ops) - 1)))
    live = trio.run(run_live, directory, ops, snapshot_at)
    replayed = replay(directory)
    assert replayed.snapshot() == json.loads(json.dumps(live.snapshot()))
    if snapshot_at is not None:
        assert JournalReader(directory).load_snapshot() is not None


def write_records(directory, count):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "segment-0000000000000001.jsonl"
    lines = [encode_line(Record(i, "2026-11-22T00:00:00.000000Z", "test.add", {"key": "a", "amount": i}))
             for i in range(1, count + 1)]
    path.write_bytes(b"".join(lines))
    return path, lines


def test_truncation_of_the_last_record_at_every_offset(tmp_path):
    base_dir = tmp_path / "base"
    path, lines = write_records(base_dir, 5)
    full = path.read_bytes()
    last_start = len(full) - len(lines[-1])
    for cut in range(last_start, len(full) + 1):
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        (directory / path.name).write_bytes(full[:cut])
        reader = JournalReader(directory)
        tail = reader.cut_torn_tail()
        state = replay(directory)
        expected_last = 5 if cut >= len(full) - 1 else 4
        assert state.seq == expected_last, cut
        assert state.counters.values["a"] == sum(range(1, expected_last + 1))
        if cut in (last_start, len(full)):
            assert tail is None  # nothing torn: a clean end of file
        elif cut == len(full) - 1:
            assert tail is None and (directory / path.name).read_bytes() == full  # newline restored
        else:
            assert tail is not None and tail.side_file.read_bytes() == full[last_start:cut]
        assert JournalReader(directory).verify().ok


def test_flipped_byte_mid_file_refuses_with_file_line_and_seq(tmp_path):
    path, lines = write_records(tmp_path, 10)
    data = bytearray(path.read_bytes())
    offset = sum(len(l) for l in lines[:4]) + 20  # inside record 5
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))
    assert JournalReader(tmp_path).cut_torn_tail() is None  # valid records follow: not a torn tail
    with pytest.raises(CorruptJournal) as excinfo:
        replay(tmp_path)
    message = str(excinfo.value)
    assert path.name in message and "line 5" in message and "after seq 4" in message
    report = JournalReader(tmp_path).verify()
    assert not report.ok and "line 5" in report.problems[0]
    dropped = JournalReader(tmp_path).repair()
    assert len(dropped) == 1 and "line 5 after seq 4" in dropped[0]
    state = replay(tmp_path)
    assert state.seq == 10 and 5 not in state.counters.log
    assert JournalReader(tmp_path).verify().ok
    assert list(tmp_path.glob("*.dropped-*"))


def test_missing_records_after_a_snapshot_are_detected(tmp_path):
    path, lines = write_records(tmp_path, 10)
    state = make_test_state()
    for line in lines[:3]:
        from gatewayd.journal.record import decode_line
        state.apply(decode_line(line))
    JournalReader.write_snapshot(tmp_path, 3, "2026-11-22T00:00:00.000000Z", state.snapshot())
    path.write_bytes(b"".join(lines[:3] + lines[5:]))  # records 4 and 5 vanish
    with pytest.raises(CorruptJournal, match="expected seq 4"):
        replay(tmp_path)


def test_corrupt_newest_snapshot_falls_back_to_an_older_one(tmp_path):
    path, lines = write_records(tmp_path, 6)
    state = make_test_state()
    from gatewayd.journal.record import decode_line
    for line in lines[:2]:
        state.apply(decode_line(line))
    JournalReader.write_snapshot(tmp_path, 2, "2026-11-22T00:00:00.000000Z", state.snapshot())
    for line in lines[2:4]:
        state.apply(decode_line(line))
    newest = JournalReader.write_snapshot(tmp_path, 4, "2026-11-22T00:00:00.000000Z", state.snapshot())
    raw = bytearray(newest.read_bytes())
    raw[10] ^= 1
    newest.write_bytes(bytes(raw))
    assert replay(tmp_path).counters.values["a"] == sum(range(1, 7))


async def test_retention_deletes_only_covered_old_segments(tmp_path):
    ops = [("test.add", {"key": "a", "amount": 1})] * 300
    live = await run_live(tmp_path, ops, segment_bytes=2048)
    segments_before = list_segments(tmp_path)
    encoded = encode_snapshot(live.seq, json.loads(json.dumps(live.snapshot())))
    result = write_snapshot_and_prune(tmp_path, live.seq, encoded, max_age_seconds=10**9, max_bytes=4096)
    segments_after = list_segments(tmp_path)
    assert result.segments_deleted and len(segments_after) < len(segments_before)
    assert segments_after[-1] == segments_before[-1]  # the open segment is never deleted
    assert replay(tmp_path).counters.values["a"] == 300
    # Age-based: nothing is old, nothing deleted beyond the byte budget.
    os.utime(segments_after[0][1], (0, 0))
    result = write_snapshot_and_prune(tmp_path, live.seq, encoded, max_age_seconds=3600, max_bytes=1 << 40)
    assert segments_after[0][1].name in result.segments_deleted


def write_segments(directory, bounds):
    """Segments holding seqs first..last for each (first, last)."""
    directory.mkdir(parents=True, exist_ok=True)
    for first, last in bounds:
        (directory / f"segment-{first:016d}.jsonl").write_bytes(b"".join(
            encode_line(Record(seq, "2026-11-22T00:00:00.000000Z", "test.add", {"key": "a", "amount": seq}))
            for seq in range(first, last + 1)))


def test_records_between_any_bounds_across_segments(tmp_path):
    write_segments(tmp_path, [(1, 6), (7, 12), (13, 13), (14, 20)])
    reader = JournalReader(tmp_path)
    for after in range(0, 22):
        for until in [None, *range(0, 22)]:
            wanted = [seq for seq in range(1, 21) if seq > after and (until is None or seq <= until)]
            assert [r.seq for r in reader.records(after_seq=after, until_seq=until)] == wanted, (after, until)
            if after <= 20:
                got = [r.seq for r in reader.records(after_seq=after, until_seq=until, contiguous=True)]
                assert got == wanted, (after, until)


def test_a_seq_gap_between_segments_is_named(tmp_path):
    write_segments(tmp_path, [(1, 6), (8, 12)])
    with pytest.raises(CorruptJournal, match="expected seq 7, found 8") as excinfo:
        list(JournalReader(tmp_path).records())
    assert "segment-0000000000000008.jsonl: line 1 (after seq 6)" in str(excinfo.value)


def test_a_line_in_a_valid_but_unusual_form_is_still_read(tmp_path):
    path, lines = write_records(tmp_path, 5)
    upper = lines[2][:-11] + lines[2][-11:-3].upper() + lines[2][-3:]  # checksum in upper-case hex
    assert upper != lines[2]
    path.write_bytes(b"".join(lines[:2] + [upper] + lines[3:]))
    assert [r.seq for r in JournalReader(tmp_path).records()] == [1, 2, 3, 4, 5]


def test_state_replay_counts_and_leaves_the_collector_as_it_was(tmp_path):
    import gc

    path, lines = write_records(tmp_path, 5)
    state = make_test_state()
    assert state.replay(JournalReader(tmp_path).records()) == 5
    assert state.seq == 5 and state.counters.values["a"] == 15 and gc.isenabled()
    broken = make_test_state()
    bad = Record(6, "2026-11-22T00:00:00.000000Z", "test.add", {"key": "a"})  # no amount: the applier fails
    with pytest.raises(KeyError):
        broken.replay([*JournalReader(tmp_path).records(), bad])
    assert broken.seq == 5 and gc.isenabled()


@pytest.mark.parametrize("chunk_bytes", [1, 300, 1 << 20])
def test_a_segment_read_in_chunks_gives_every_record_and_names_damage_by_its_line(tmp_path, monkeypatch, chunk_bytes):
    import gatewayd.journal.reader as reader_module

    monkeypatch.setattr(reader_module, "CHUNK_BYTES", chunk_bytes)
    path, lines = write_records(tmp_path, 30)
    assert [r.seq for r in JournalReader(tmp_path).records()] == list(range(1, 31))
    assert [r.seq for r in JournalReader(tmp_path).records(after_seq=7, until_seq=23)] == list(range(8, 24))
    assert replay(tmp_path).seq == 30
    data = bytearray(path.read_bytes())
    data[sum(len(l) for l in lines[:21]) + 20] ^= 0x20  # inside record 22
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptJournal) as excinfo:
        replay(tmp_path)
    assert "line 22" in str(excinfo.value) and "after seq 21" in str(excinfo.value)

"""A follower that stays behind the hub's window reads on from where it stopped: each line of a plain
segment is decoded once, whatever the number of reads; anything unusual goes the checked way."""

import trio

from gatewayd import hub as hub_module
from gatewayd.journal import reader as reader_module, tail as tail_module
from gatewayd.journal.files import compress_segment, list_segments
from gatewayd.journal.follow import JournalFollower
from gatewayd.journal.record import Record, encode_line
from gatewayd.journal.tail import SegmentTail

from .test_follow import add, collect, open_hub


def count_decoded(monkeypatch) -> list[int]:
    decoded = [0]
    for module in (tail_module, reader_module):
        original = module.decode_lines

        def counting(lines, original=original):
            decoded[0] += len(lines)
            return original(lines)

        monkeypatch.setattr(module, "decode_lines", counting)
    return decoded


async def test_a_follower_that_stays_behind_decodes_each_line_once(tmp_path, nursery, monkeypatch):
    monkeypatch.setattr(hub_module, "RECENT_RECORDS", 8)
    hub = await open_hub(tmp_path, nursery, segment_bytes=64 * 1024)
    for amount in range(300):
        await hub.publish(*add(amount))
    decoded = count_decoded(monkeypatch)
    follower = JournalFollower(hub, tmp_path, after_seq=280, max_batch=10)
    seqs = []
    for _ in range(30):  # as many records arrive as it reads: it stays 20 behind, past the window
        seqs += await collect(follower, 10)
        await hub.publish_many([add()] * 10)
    assert seqs == list(range(281, 581))
    assert decoded[0] <= 300 + 10  # each line once (the last read may look at a few more)


def write_lines(path, records, tail=b""):
    path.write_bytes(b"".join(encode_line(r) for r in records) + tail)


def records(first, last):
    return [Record(seq, "2026-12-01T00:00:00.000000Z", "test.add", {"key": "a", "amount": seq})
            for seq in range(first, last + 1)]


def test_a_line_still_being_written_and_records_not_yet_durable_wait(tmp_path):
    path = tmp_path / "segment-0000000000000001.jsonl"
    partial = encode_line(records(6, 6)[0])[:20]
    write_lines(path, records(1, 5), partial)
    tail = SegmentTail(tmp_path)
    assert [r.seq for r in tail.read(0, 3, 100)] == [1, 2, 3]  # 4 and 5 are not durable yet
    assert [r.seq for r in tail.read(3, 10, 100)] == [4, 5]  # 6 is not complete
    write_lines(path, records(1, 7))
    assert [r.seq for r in tail.read(5, 10, 100)] == [6, 7]


def test_the_next_segment_is_read_once_this_one_is_sealed(tmp_path):
    write_lines(tmp_path / "segment-0000000000000001.jsonl", records(1, 4))
    tail = SegmentTail(tmp_path)
    assert [r.seq for r in tail.read(2, 4, 100)] == [3, 4]
    write_lines(tmp_path / "segment-0000000000000005.jsonl", records(5, 9))
    assert [r.seq for r in tail.read(4, 9, 3)] == [5, 6, 7]
    assert [r.seq for r in tail.read(7, 9, 3)] == [8, 9]


def test_unusual_journals_are_left_to_the_checked_reader(tmp_path):
    first = tmp_path / "segment-0000000000000001.jsonl"
    write_lines(first, records(1, 3) + records(5, 6))  # a gap
    assert SegmentTail(tmp_path).read(0, 6, 100) == [*records(1, 3)]
    assert SegmentTail(tmp_path).read(3, 6, 100) is None
    write_lines(first, records(1, 3), b'{"seq":4,"ts":"x","type":"t","data":{},"crc":"00000000"}\n')
    assert SegmentTail(tmp_path).read(3, 4, 100) is None  # does not check out
    write_lines(first, records(1, 3))
    compress_segment(first)
    assert SegmentTail(tmp_path).read(0, 3, 100) is None  # compressed: read whole, the checked way


async def test_a_follower_reads_on_through_compressed_and_plain_segments(tmp_path, nursery, monkeypatch):
    monkeypatch.setattr(hub_module, "RECENT_RECORDS", 4)
    hub = await open_hub(tmp_path, nursery, segment_bytes=2048)
    for amount in range(120):
        await hub.publish(*add(amount))
    sealed = list_segments(tmp_path)[:-1]
    for _, path in sealed[:2]:
        await trio.to_thread.run_sync(compress_segment, path)
    follower = JournalFollower(hub, tmp_path, after_seq=3, max_batch=7)
    assert await collect(follower, 117) == list(range(4, 121))
    assert follower.skipped == 0

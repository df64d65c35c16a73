"""Closed segments compressed with zstd: every reader (replay, follower, verify, repair, backup)
reads them as it reads plain ones, and the segment being written stays plain."""

import json

import trio
import zstandard

from gatewayd.journal.files import compress_segment, is_compressed, list_segments, read_segment
from gatewayd.journal.follow import JournalFollower
from gatewayd.journal.reader import JournalReader
from gatewayd.journal.record import Record, encode_line
from gatewayd.journal.writer import JournalWriter

from .test_replay import replay, run_live


def add(amount):
    return "test.add", {"key": "a", "amount": amount}


async def compressed_journal(directory, count=300):
    live = await run_live(directory, [add(i) for i in range(count)], segment_bytes=2048)
    segments = list_segments(directory)
    assert len(segments) > 3
    for _, path in segments[:-1]:
        compress_segment(path)
    return live


async def test_replay_and_verify_read_compressed_segments(tmp_path):
    live = await compressed_journal(tmp_path)
    segments = list_segments(tmp_path)
    assert all(is_compressed(p) for _, p in segments[:-1]) and not is_compressed(segments[-1][1])
    assert not list(tmp_path.glob("*.jsonl.tmp")) and not list(tmp_path.glob("*.zst.tmp"))
    assert replay(tmp_path).counters.values == live.counters.values
    report = JournalReader(tmp_path).verify()
    assert report.ok and report.records == 300 and report.last_seq == 300
    plain = sum(len(read_segment(p)) for _, p in segments[:-1])
    on_disk = sum(p.stat().st_size for _, p in segments[:-1])
    assert on_disk * 3 < plain, "JSON lines compress well"


async def test_a_writer_reopening_after_compression_appends_to_a_plain_segment(tmp_path):
    await compressed_journal(tmp_path)
    last_first, last_path = list_segments(tmp_path)[-1]
    compress_segment(last_path)  # even if the last one was compressed, it is never appended to
    writer = JournalWriter(tmp_path, next_seq=301, flush_interval=0)
    record = Record(301, "2026-12-02T00:00:00.000000Z", "test.add", {"key": "a", "amount": 1})
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await writer.append(record, encode_line(record), True).wait()
        await writer.close()
    writer.close_files()
    assert not is_compressed(list_segments(tmp_path)[-1][1])
    assert [r.seq for r in JournalReader(tmp_path).records(after_seq=299)] == [300, 301]


async def test_a_reader_that_listed_the_plain_file_reads_the_compressed_one(tmp_path):
    await compressed_journal(tmp_path)
    _, path = list_segments(tmp_path)[0]
    plain = path.with_name(path.name.removesuffix(".zst"))
    assert read_segment(plain) == read_segment(path)


async def test_repair_rewrites_a_damaged_compressed_segment_compressed(tmp_path):
    await compressed_journal(tmp_path)
    _, path = list_segments(tmp_path)[1]
    lines = read_segment(path).split(b"\n")
    lines[2] = lines[2].replace(b'"amount"', b'"amounT"')  # checksum no longer matches
    path.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines)))
    assert not JournalReader(tmp_path).verify().ok
    dropped = JournalReader(tmp_path).repair()
    assert len(dropped) == 1 and path.exists() and is_compressed(path)
    assert JournalReader(tmp_path).verify().ok


async def test_a_follower_catches_up_through_compressed_segments(tmp_path, nursery):
    from gatewayd.hub import Hub

    from .helpers import make_test_state

    await compressed_journal(tmp_path)
    state = make_test_state()
    state.seq = 300
    writer = JournalWriter(tmp_path, next_seq=301)
    hub = Hub(state, writer)
    await nursery.start(writer.run)
    await hub.publish(*add(1))
    follower = JournalFollower(hub, tmp_path, after_seq=0, max_batch=1000)
    seqs = []
    with trio.fail_after(10):
        while len(seqs) < 301:
            seqs.extend(r.seq for r in await follower.next_batch())
    assert seqs == list(range(1, 302))


def test_a_segment_is_compressed_in_pieces_not_held_whole(tmp_path):
    import tracemalloc

    path = tmp_path / "segment-0000000000000001.jsonl"
    lines = b"".join(encode_line(Record(seq, "2026-12-02T00:00:00.000000Z", "test.add",
                                        {"key": f"k{seq % 977}", "amount": seq})) for seq in range(1, 60_001))
    path.write_bytes(lines)
    tracemalloc.start()
    try:
        compressed = compress_segment(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lines) > 4 << 20
    assert peak < len(lines) // 8, f"{peak} bytes at once for a {len(lines)}-byte segment"
    assert zstandard.ZstdDecompressor().decompressobj().decompress(compressed.read_bytes()) == lines
    assert read_segment(compressed) == lines and not path.exists()

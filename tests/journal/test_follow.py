"""Journal followers and their durable cursors: order, catch-up from files, hand-over to live records,
and compaction held back by the lowest cursor."""

import json

import pytest
import trio

from gatewayd import hub as hub_module
from gatewayd.hub import Hub
from gatewayd.journal.compaction import encode_snapshot, write_snapshot_and_prune
from gatewayd.journal.files import list_segments
from gatewayd.journal.follow import CursorStore, JournalFollower
from gatewayd.journal.writer import JournalWriter

from .helpers import make_test_state


def add(amount=1):
    return "test.add", {"key": "a", "amount": amount}


async def open_hub(directory, nursery, **kw):
    writer = JournalWriter(directory, next_seq=1, **kw)
    hub = Hub(make_test_state(), writer, durable_timeout=5.0)
    await nursery.start(writer.run)
    return hub


async def collect(follower, count):
    seqs = []
    with trio.fail_after(10):
        while len(seqs) < count:
            seqs.extend(record.seq for record in await follower.next_batch())
    return seqs


async def test_a_follower_reads_the_backlog_from_files_then_goes_on_live(tmp_path, nursery, monkeypatch):
    monkeypatch.setattr(hub_module, "RECENT_RECORDS", 16)  # the window holds the last 16 records only
    hub = await open_hub(tmp_path, nursery, segment_bytes=2048)
    for amount in range(1, 201):
        await hub.publish(*add(amount))
    assert len(list_segments(tmp_path)) > 1
    follower = JournalFollower(hub, tmp_path, after_seq=10, max_batch=50)
    assert await collect(follower, 190) == list(range(11, 201))

    async def publish_more():
        for amount in range(5):
            await hub.publish(*add(amount))

    nursery.start_soon(publish_more)
    assert await collect(follower, 5) == list(range(201, 206))
    assert follower.position == 205 and follower.skipped == 0


async def test_a_follower_waits_for_durability(tmp_path, nursery):
    hub = await open_hub(tmp_path, nursery)
    follower = JournalFollower(hub, tmp_path, after_seq=0)
    got = []

    async def follow():
        got.extend(await follower.next_batch())

    async with trio.open_nursery() as inner:
        inner.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []  # nothing yet: it waits rather than spins
        record = await hub.publish(*add())
    assert [r.seq for r in got] == [record.seq]
    assert got[0].data == record.data


async def test_a_non_durable_record_is_not_handed_on_before_it_is_written(tmp_path, nursery):
    hub = await open_hub(tmp_path, nursery, flush_interval=60)
    hub.publish_nowait(*add())
    follower = JournalFollower(hub, tmp_path, after_seq=0)
    with trio.move_on_after(0.2):
        await follower.next_batch()
        pytest.fail("a record was returned before it was durable")
    await hub.publish(*add())  # a durable record behind it makes both durable
    assert [r.seq for r in await follower.next_batch()] == [1, 2]


async def test_a_follower_falls_behind_the_window_and_catches_up_from_files(tmp_path, nursery, monkeypatch):
    monkeypatch.setattr(hub_module, "RECENT_RECORDS", 8)
    hub = await open_hub(tmp_path, nursery)
    follower = JournalFollower(hub, tmp_path, after_seq=0, max_batch=3)
    await hub.publish(*add())
    assert [r.seq for r in await follower.next_batch()] == [1]
    await hub.publish_many([add()] * 40)  # far past the window
    assert await collect(follower, 40) == list(range(2, 42))


def test_cursor_store_round_trip(tmp_path):
    store = CursorStore(tmp_path / "cursors")
    assert store.load("mqtt") == 0 and store.lowest() is None and store.all() == {}
    store.save("mqtt", 41)
    store.save("history", 7)
    assert store.load("mqtt") == 41 and store.lowest() == 7
    assert store.all() == {"mqtt": 41, "history": 7}
    store.remove("history")
    store.remove("history")  # forgetting twice is harmless
    assert store.all() == {"mqtt": 41}
    (tmp_path / "cursors" / "broken.seq").write_text("not a number")
    assert store.lowest() == 0  # an unreadable cursor holds everything back rather than nothing
    with pytest.raises(ValueError):
        store.save("../escape", 1)


async def test_cursor_store_saves_from_a_worker_thread(tmp_path):
    store = CursorStore(tmp_path / "cursors")
    await store.asave("webhook-1", 12)
    assert CursorStore(tmp_path / "cursors").load("webhook-1") == 12


async def test_compaction_keeps_every_segment_after_the_lowest_cursor(tmp_path, nursery):
    hub = await open_hub(tmp_path, nursery, segment_bytes=2048)
    for _ in range(300):
        await hub.publish(*add())
    before = list_segments(tmp_path)
    encoded = encode_snapshot(hub.state.seq, json.loads(json.dumps(hub.state.snapshot())))
    cursor = 120
    result = write_snapshot_and_prune(tmp_path, hub.state.seq, encoded, max_age_seconds=0, max_bytes=0,
                                      keep_after_seq=cursor)
    after = list_segments(tmp_path)
    assert result.segments_deleted, "segments wholly before the cursor are still pruned"
    assert after[0][0] <= cursor + 1, "the segment holding the record after the cursor stays"
    follower = JournalFollower(hub, tmp_path, after_seq=cursor, max_batch=1000)
    assert await collect(follower, 300 - cursor) == list(range(cursor + 1, 301))
    assert before[-1] == after[-1]

"""The writer: durability ordering, group commit, write errors, rotation, locking."""

import errno

import pytest
import trio

from gatewayd.hub import Hub
from gatewayd.journal.fileops import FileOps
from gatewayd.journal.files import list_segments
from gatewayd.journal.lock import JournalLock, JournalLocked
from gatewayd.journal.reader import JournalReader
from gatewayd.journal.writer import JournalUnavailable, JournalWriter

from .helpers import make_test_state


class GatedSync(FileOps):
    """fsync waits until the test opens the gate: shows who waits for durability."""

    def __init__(self):
        self.gate = trio.Event()
        self.syncs = 0
        self.token = trio.lowlevel.current_trio_token()

    def sync(self, fd):
        trio.from_thread.run(self.gate.wait, trio_token=self.token)
        self.syncs += 1
        super().sync(fd)


class FailingWrites(FileOps):
    def __init__(self):
        self.error: int | None = None
        self.calls = 0

    def write(self, fd, data):
        self.calls += 1
        if self.error is not None:
            # Half the bytes land before the error, as on a disk that fills up mid-write.
            super().write(fd, bytes(data[: len(data) // 2]))
            raise OSError(self.error, "injected")
        return super().write(fd, data)


def make_hub(tmp_path, fileops=None, **kw):
    state = make_test_state()
    writer = JournalWriter(tmp_path, next_seq=1, fileops=fileops, **kw)
    return Hub(state, writer, durable_timeout=kw.pop("durable_timeout", 5.0)), writer


async def test_durable_publish_returns_only_after_fsync(tmp_path, nursery):
    ops = GatedSync()
    hub, writer = make_hub(tmp_path, ops)
    await nursery.start(writer.run)
    done = trio.Event()

    async def publisher():
        await hub.publish("test.add", {"key": "a", "amount": 1})
        done.set()

    nursery.start_soon(publisher)
    await trio.testing.wait_all_tasks_blocked()
    assert not done.is_set(), "publish returned before fsync"
    assert ops.syncs == 0
    ops.gate.set()
    with trio.fail_after(5):
        await done.wait()
    assert ops.syncs == 1
    await writer.close()


async def test_concurrent_publishers_share_one_fsync(tmp_path, nursery):
    ops = GatedSync()
    hub, writer = make_hub(tmp_path, ops)
    await nursery.start(writer.run)
    # The first publish occupies the writer (its fsync is gated); 50 more gather meanwhile.
    async with trio.open_nursery() as publishers:
        publishers.start_soon(hub.publish, "test.add", {"key": "first", "amount": 1})
        await trio.testing.wait_all_tasks_blocked()
        for i in range(50):
            publishers.start_soon(hub.publish, "test.add", {"key": f"k{i}", "amount": 1})
        await trio.testing.wait_all_tasks_blocked()
        ops.gate.set()
    assert ops.syncs == 2, "the 50 waiting publishers should have shared one fsync"
    assert writer.durable_seq == 51
    await writer.close()


async def test_non_durable_records_are_flushed_within_the_interval(tmp_path, nursery):
    hub, writer = make_hub(tmp_path, flush_interval=0.05)
    await nursery.start(writer.run)
    record = hub.publish_nowait("test.add", {"key": "a", "amount": 2})
    with trio.fail_after(2):
        while writer.durable_seq < record.seq:
            await trio.sleep(0.005)
    assert [r.seq for r in JournalReader(tmp_path).records()] == [1]
    await writer.close()


async def test_write_error_refuses_acknowledgement_and_recovers(tmp_path, nursery):
    ops = FailingWrites()
    hub, writer = make_hub(tmp_path, ops)
    await nursery.start(writer.run)
    await hub.publish("test.add", {"key": "a", "amount": 1})
    ops.error = errno.ENOSPC
    with pytest.raises(JournalUnavailable):
        await hub.publish("test.add", {"key": "b", "amount": 1})
    # While failing, new work is refused up front.
    with pytest.raises(JournalUnavailable):
        await hub.publish("test.add", {"key": "c", "amount": 1})
    ops.error = None
    with trio.fail_after(5):
        while writer.failed is not None:
            await trio.sleep(0.01)
    await hub.publish("test.add", {"key": "d", "amount": 1})
    await writer.close()
    records = list(JournalReader(tmp_path).records())
    # The unacknowledged record was retried and written once; the torn half-writes were removed.
    assert [r.data["key"] for r in records] == ["a", "b", "d"]
    assert [r.seq for r in records] == [1, 2, 3]


async def test_eio_on_fsync_is_not_acknowledged(tmp_path, nursery):
    class FailingSync(FileOps):
        fail = True

        def sync(self, fd):
            if self.fail:
                self.fail = False
                raise OSError(errno.EIO, "injected")
            super().sync(fd)

    hub, writer = make_hub(tmp_path, FailingSync())
    await nursery.start(writer.run)
    with pytest.raises(JournalUnavailable):
        await hub.publish("test.add", {"key": "a", "amount": 1})
    with trio.fail_after(5):
        while writer.failed is not None or writer.durable_seq < 1:
            await trio.sleep(0.01)
    assert [r.seq for r in JournalReader(tmp_path).records()] == [1]
    await writer.close()


async def test_segments_rotate_by_size(tmp_path, nursery):
    hub, writer = make_hub(tmp_path, segment_bytes=4096)
    await nursery.start(writer.run)
    for i in range(200):
        await hub.publish("test.add", {"key": f"k{i % 7}", "amount": i})
    await writer.close()
    writer.close_files()
    segments = list_segments(tmp_path)
    assert len(segments) > 3
    assert [r.seq for r in JournalReader(tmp_path).records()] == list(range(1, 201))


async def test_timeout_when_writer_stalls(tmp_path, nursery):
    ops = GatedSync()
    state = make_test_state()
    writer = JournalWriter(tmp_path, next_seq=1, fileops=ops)
    hub = Hub(state, writer, durable_timeout=0.2)
    await nursery.start(writer.run)
    with pytest.raises(JournalUnavailable):
        await hub.publish("test.add", {"key": "a", "amount": 1})
    ops.gate.set()
    await writer.close()


def test_second_writer_is_refused(tmp_path):
    with JournalLock(tmp_path):
        with pytest.raises(JournalLocked, match="in use by another process"):
            JournalLock(tmp_path).acquire()
    JournalLock(tmp_path).acquire()  # free again once released


async def test_unencodable_data_is_refused_before_it_changes_anything(tmp_path, nursery):
    from gatewayd.journal.record import UnencodableRecord

    hub, writer = make_hub(tmp_path)
    await nursery.start(writer.run)
    with pytest.raises(UnencodableRecord):
        await hub.publish("test.add", {"key": "a", "amount": 2**70})
    assert hub.state.seq == 0 and hub.next_seq == 1 and "a" not in hub.state.counters.values
    await hub.publish("test.add", {"key": "a", "amount": 1})
    assert hub.state.seq == 1
    await writer.close()


async def test_a_publisher_cancelled_while_waiting_does_not_disturb_the_others(tmp_path, nursery):
    ops = GatedSync()
    hub, writer = make_hub(tmp_path, ops)
    await nursery.start(writer.run)
    done = []
    scope = trio.CancelScope()

    async def publisher(key, cancel_scope=None):
        with cancel_scope or trio.CancelScope():
            await hub.publish("test.add", {"key": key, "amount": 1})
            done.append(key)

    async with trio.open_nursery() as publishers:
        for key in ("first", "second"):
            publishers.start_soon(publisher, key)
        publishers.start_soon(publisher, "cancelled", scope)
        await trio.testing.wait_all_tasks_blocked()  # all three wait on the gated fsync
        scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert done == []
        ops.gate.set()
    assert sorted(done) == ["first", "second"]
    assert writer.durable_seq == 3  # the cancelled publisher's record was published all the same
    await writer.close()


class CountingSync(FileOps):
    def __init__(self):
        self.syncs = 0

    def sync(self, fd):
        self.syncs += 1
        super().sync(fd)


async def test_a_commit_gathers_records_for_the_commit_interval(tmp_path, nursery):
    ops = CountingSync()
    hub, writer = make_hub(tmp_path, ops, commit_interval=0.5)
    await nursery.start(writer.run)
    async with trio.open_nursery() as publishers:  # two at once: commits are shared from now on
        publishers.start_soon(hub.publish, "test.add", {"key": "a", "amount": 1})
        publishers.start_soon(hub.publish, "test.add", {"key": "b", "amount": 1})
    assert ops.syncs == 1
    async with trio.open_nursery() as publishers:
        publishers.start_soon(hub.publish, "test.add", {"key": "first", "amount": 1})
        await trio.testing.wait_all_tasks_blocked()
        assert ops.syncs == 1, "the first record waits for company before its fdatasync"
        for i in range(20):
            publishers.start_soon(hub.publish, "test.add", {"key": f"k{i}", "amount": 1})
    assert ops.syncs == 2 and writer.durable_seq == 23
    await writer.close()


async def test_a_lone_publisher_is_not_held_back_by_the_commit_interval(tmp_path, nursery):
    hub, writer = make_hub(tmp_path, commit_interval=60)
    await nursery.start(writer.run)
    with trio.fail_after(5):  # one device sending in turn: nobody would join its commits
        for i in range(5):
            await hub.publish("test.add", {"key": "a", "amount": i})
    assert writer.durable_seq == 5
    await writer.close()


async def test_closing_does_not_wait_out_the_commit_interval(tmp_path, nursery):
    hub, writer = make_hub(tmp_path, commit_interval=60)
    await nursery.start(writer.run)
    async with trio.open_nursery() as publishers:  # shared commits: the next one waits for company
        publishers.start_soon(hub.publish, "test.add", {"key": "a", "amount": 1})
        publishers.start_soon(hub.publish, "test.add", {"key": "b", "amount": 1})
    async with trio.open_nursery() as publishers:
        publishers.start_soon(hub.publish, "test.add", {"key": "a", "amount": 1})
        await trio.testing.wait_all_tasks_blocked()
        assert writer.durable_seq == 2
        with trio.fail_after(5):
            assert await writer.close()
    assert writer.durable_seq == 3

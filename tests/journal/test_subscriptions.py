"""Hub subscriptions: durable records in order, a batch at a time, bounded, ended by overflow."""

import pytest
import trio

from gatewayd.hub import Hub
from gatewayd.journal.record import Record
from gatewayd.journal.writer import JournalWriter

from .helpers import make_test_state


def records(first, count, type_="test.add"):
    return [Record(seq, "2026-06-12T09:15:30.000000Z", type_, {"n": seq}) for seq in range(first, first + count)]


def quiet_hub(tmp_path):
    """A hub whose fan-out the test drives itself (no journal writer task)."""
    return Hub(make_test_state(), JournalWriter(tmp_path, next_seq=1), durable_timeout=5.0)


async def test_records_arrive_in_order_with_their_lines_and_only_the_accepted_ones(tmp_path):
    hub = quiet_hub(tmp_path)
    with hub.subscribe(100, lambda r: r.seq % 2 == 1, lines=True) as odd, hub.subscribe(100) as every:
        batch = records(1, 6)
        hub._fan_out(batch, [b"line %d" % r.seq for r in batch])
        hub._fan_out(records(7, 1), None)
        assert [every.receive.receive_nowait().seq for _ in range(7)] == list(range(1, 8))
        got = [odd.receive.receive_nowait() for _ in range(4)]
        assert [(r.seq, line) for r, line in got] == [(1, b"line 1"), (3, b"line 3"), (5, b"line 5"), (7, None)]
        with pytest.raises(trio.WouldBlock):
            odd.receive.receive_nowait()


async def test_an_overflow_keeps_what_fitted_then_ends_the_subscription(tmp_path):
    hub = quiet_hub(tmp_path)
    with hub.subscribe(3) as subscription:
        hub._fan_out(records(1, 2))
        hub._fan_out(records(3, 2))  # one fits, the next overflows
        assert subscription.overflowed and hub.subscriber_count == 0
        hub._fan_out(records(5, 1))
        assert [record.seq async for record in subscription.receive] == [1, 2, 3]


async def test_a_waiting_consumer_wakes_once_per_batch_and_takes_one_more_than_the_size(tmp_path, nursery):
    hub = quiet_hub(tmp_path)
    got = []
    with hub.subscribe(2) as subscription:
        async def consume():
            async for record in subscription.receive:
                got.append(record.seq)
                if len(got) == 3:
                    return

        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        hub._fan_out(records(1, 3))  # as with a trio channel: one for the waiting task, two queued
        assert not subscription.overflowed
        with trio.fail_after(5):
            while len(got) < 3:
                await trio.sleep(0)  # (the consumer's turns, not a wait for time)
        assert got == [1, 2, 3]


async def test_closing_the_receive_side_wakes_the_consumer_and_ends_the_subscription(tmp_path, nursery):
    hub = quiet_hub(tmp_path)
    subscription = hub.subscribe(10)
    outcome = []

    async def consume():
        try:
            await subscription.receive.receive()
        except trio.ClosedResourceError:
            outcome.append("closed")

    nursery.start_soon(consume)
    await trio.testing.wait_all_tasks_blocked()
    subscription.receive.close()
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()
    assert outcome == ["closed"]
    hub._fan_out(records(1, 1))
    assert hub.subscriber_count == 0


async def test_a_cancelled_receive_takes_nothing(tmp_path):
    hub = quiet_hub(tmp_path)
    with hub.subscribe(10) as subscription:
        with trio.move_on_after(0):
            await subscription.receive.receive()
        hub._fan_out(records(1, 1))
        with trio.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(trio.Cancelled):
                await subscription.receive.receive()
        assert (await subscription.receive.receive()).seq == 1

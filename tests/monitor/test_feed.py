"""The shared feed a filter's sessions read at their own cursors, and the busy-loop write pace:
in process, against a plain model."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.loopload import WINDOW, LoopLoad
from gatewayd.web.wsframe import SharedText
from gatewayd.connectors.monitor.service import BUSY_FROM, BUSY_FULL, BUSY_STRETCH, Broadcast
from gatewayd.connectors.monitor.session import Feed, queue_item


class Reader:
    """A session as the feed sees it: a cursor, and a drop when it lost its place."""

    def __init__(self, feed: Feed):
        self.feed = feed
        self.cursor = feed.end
        self.dropped = False
        feed.sessions.append(self)

    def drop(self) -> None:
        self.dropped = True
        self.feed.sessions.remove(self)


def item(seq: int, sizes: list[int]):
    return queue_item(seq, [SharedText(chr(97 + (seq + n) % 26) * size) for n, size in enumerate(sizes)])


records = st.lists(st.lists(st.integers(0, 300), min_size=1, max_size=3), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(records, st.integers(1, 20), st.integers(1, 700), st.data())
def test_reads_return_exactly_the_frames_of_the_items_asked_for(sizes, limit, byte_cap, data):
    feed = Feed(limit)
    readers = [Reader(feed) for _ in range(3)]
    appended = []
    for seq, frame_sizes in enumerate(sizes, start=1):
        appended.append(item(seq, frame_sizes))
        feed.append(appended[-1])
        for reader in readers:
            if reader.dropped or reader.cursor == feed.end or not data.draw(st.booleans()):
                continue
            count = data.draw(st.integers(1, feed.end - reader.cursor))
            got, taken, last_seq = feed.read_frames(reader.cursor, count, byte_cap)
            wanted = appended[reader.cursor:reader.cursor + count]
            frames = [b"".join(f.frame for f in entry[1]) for entry in wanted]
            # As many whole items as fit the byte cap, and always at least one.
            fit = 1
            while fit < len(frames) and sum(map(len, frames[:fit + 1])) <= byte_cap:
                fit += 1
            assert taken == fit
            assert got == b"".join(frames[:fit])
            assert last_seq == wanted[fit - 1][0]
            assert feed.read(reader.cursor, taken) == wanted[:fit]
            reader.cursor += taken
        # Bounded: a reader that fell more than `limit` (+ a quarter) behind was dropped, and
        # every reader still on the feed can read on from where it is.
        assert len(feed.items) <= limit + limit // 4 + 1
        for reader in readers:
            if reader.dropped:
                assert reader not in feed.sessions
            else:
                assert feed.base <= reader.cursor <= feed.end
                assert feed.end - reader.cursor <= limit + limit // 4


def test_a_feed_keeps_nothing_its_readers_have_read():
    feed = Feed(8)
    reader = Reader(feed)
    for seq in range(1, 40):
        feed.append(item(seq, [10]))
        _, taken, _ = feed.read_frames(reader.cursor, 1, 1000)
        reader.cursor += taken
    assert not reader.dropped
    assert len(feed.items) <= 8 // 4 + 1  # trimmed to the reader, not held up to the limit
    assert feed.read_frames(reader.cursor - 1, 1, 1000)[0] == item(39, [10])[1][0].frame


def test_appending_wakes_the_writers_that_wait():
    import trio

    feed = Feed(4)
    events = [trio.Event(), trio.Event()]
    feed.waiting.extend(events)
    feed.append(item(1, [5]))
    assert all(event.is_set() for event in events) and not feed.waiting


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_loop(load: LoopLoad, clock: FakeClock, seconds: float, busy_share: float, step: float = 0.01) -> None:
    """The loop works `busy_share` of every step and waits for I/O the rest."""
    for _ in range(round(seconds / step)):
        clock.now += step * busy_share
        load.before_io_wait(1.0)
        clock.now += step * (1 - busy_share)
        load.after_io_wait(1.0)


def test_loop_load_measures_the_share_of_time_at_work():
    clock = FakeClock()
    load = LoopLoad(clock)
    assert load.busy() == 0.0
    run_loop(load, clock, 2.0, 0.9)
    assert abs(load.busy() - 0.9) < 0.02
    run_loop(load, clock, 2.0, 0.2)
    assert abs(load.busy() - 0.2) < 0.02
    # A long wait that is still going on: idle now, whatever the last window said.
    run_loop(load, clock, 2.0, 1.0)
    assert load.busy() > 0.95
    load.before_io_wait(10.0)
    clock.now += 2 * WINDOW
    assert load.busy() == 0.0
    clock.now += 5.0
    load.after_io_wait(10.0)
    assert load.busy() < 0.05


def test_write_spacing_stretches_only_while_the_loop_is_nearly_saturated():
    busy = {"now": 0.0}
    core = SimpleNamespace(settings=SimpleNamespace(monitor=SimpleNamespace(writes_per_second=2000.0)),
                           loop_load=SimpleNamespace(busy=lambda: busy["now"]))
    broadcast = Broadcast.__new__(Broadcast)
    broadcast.service = SimpleNamespace(core=core)
    broadcast.sessions = set(range(10))
    base = 10 / 2000
    for share, factor in ((0.0, 1), (BUSY_FROM, 1), ((BUSY_FROM + BUSY_FULL) / 2, (1 + BUSY_STRETCH) / 2),
                          (BUSY_FULL, BUSY_STRETCH), (1.0, BUSY_STRETCH)):
        busy["now"] = share
        assert abs(broadcast.write_spacing() - base * factor) < 1e-12, share


def test_only_frames_a_filter_selects_are_encoded(monkeypatch):
    from datetime import datetime, timezone

    from gatewayd.journal.record import Record
    from gatewayd.connectors.monitor import streams
    from gatewayd.connectors.monitor.resiot import Communication, encode_envelope, parse_filter

    def mapper(record):
        return [Communication(comm_type=kind, connector="lorawan", dev_eui="70b3d57e00000001",
                              dt=datetime(2026, 1, 1, tzinfo=timezone.utc), seq=record.seq)
                for kind in ("comm_gwrx", "comm_rx")]

    encoded = []
    monkeypatch.setattr(streams, "encode_envelope", lambda comm, zone: encoded.append(comm.comm_type)
                        or encode_envelope(comm, zone))
    kind = streams.StreamKind("communications", {"lorawan.uplink": mapper}, None)
    rendered = kind.render(Record(5, "2026-01-01T00:00:00.000000Z", "lorawan.uplink", {}), timezone.utc)
    only_rx = parse_filter({"types": "comm_rx"})
    frames = kind.select(only_rx, rendered) + kind.select(only_rx, rendered)
    assert [f.text for f in frames] == [encode_envelope(rendered[1][0], timezone.utc)] * 2
    assert encoded == ["comm_rx"]  # once for every feed, and the comm_gwrx never
    assert [f.text for f in kind.select(None, rendered)][0] == encode_envelope(rendered[0][0], timezone.utc)


def test_a_frame_that_cannot_be_encoded_costs_its_record_only(monkeypatch):
    from datetime import datetime, timezone

    from gatewayd.journal.record import Record
    from gatewayd.connectors.monitor import streams
    from gatewayd.connectors.monitor.resiot import Communication

    def mapper(record):
        return [Communication(comm_type="comm_rx", connector="lorawan", dev_eui="x",
                              dt=datetime(2026, 1, 1, tzinfo=timezone.utc), seq=record.seq)]

    def broken(comm, zone):
        raise ValueError("cannot")

    monkeypatch.setattr(streams, "encode_envelope", broken)
    kind = streams.StreamKind("communications", {"t": mapper}, None)
    assert kind.select(None, kind.render(Record(1, "2026-01-01T00:00:00.000000Z", "t", {}), timezone.utc)) == []

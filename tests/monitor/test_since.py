"""`since` replays from the journal and continues live with no gap and no duplicate, also while
records keep arriving during the replay (short replays and long catch-ups, across segments)."""

from __future__ import annotations

import pytest
import trio

from gatewayd.connectors.monitor import session as monitor_session

from .helpers import BROKEN_RECORD, FAKE_RECORD, next_frame, open_monitor


@pytest.fixture
def daemon_sections():
    # Small segments: replays cross many files while the writer keeps rotating.
    return {"journal": {"segment_bytes": 16384}}


class Load:
    """Writers publishing test.comm records until stopped; `published` holds every seq."""

    def __init__(self, daemon, writers: int = 4):
        self.hub = daemon.core.hub
        self.writers = writers
        self.published: list[int] = []
        self.stop = trio.Event()
        self.done = trio.Event()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for index in range(self.writers):
                nursery.start_soon(self._writer, index)
        self.done.set()

    async def _writer(self, index: int) -> None:
        n = 0
        while not self.stop.is_set():
            # Mostly non-durable (big batches), every 8th durable (the group commit's pace).
            record = await self.hub.publish(FAKE_RECORD, {"dev": f"dev-{index}", "extra": {"n": n}},
                                            durable=n % 8 == 0)
            self.published.append(record.seq)
            n += 1
            await trio.sleep(0)


@pytest.mark.parametrize("behind", [40, 1500], ids=["short-replay", "long-catch-up"])
async def test_since_under_concurrent_load_has_no_gap_and_no_duplicate(daemon, behind, monkeypatch):
    # Small replay chunks: the replay takes many round trips while the writers keep going.
    monkeypatch.setattr(monitor_session, "REPLAY_CHUNK", 8)
    hub = daemon.core.hub
    load = Load(daemon)
    seqs: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(load.run)
        with trio.fail_after(20):
            while hub.fanned_seq < behind + 10:
                await trio.sleep(0.001)
        since = hub.fanned_seq - behind + 1  # on disk, while more keeps arriving
        live_at_connect = max(load.published)
        async with open_monitor(daemon, since=since) as ws:
            with trio.fail_after(30):
                # Well past what existed at connect time: the replay is over, frames are live.
                while not seqs or seqs[-1] < live_at_connect + 300:
                    seqs.append((await next_frame(ws))["Seq"])
                load.stop.set()
                await load.done.wait()
                last = max(load.published)
                while seqs[-1] < last:
                    seqs.append((await next_frame(ws))["Seq"])
    expected = sorted(s for s in load.published if s >= since)
    assert seqs[0] == since
    assert len(set(seqs)) == len(seqs), "a record was delivered twice"
    assert seqs == expected, "a record is missing or out of order"


async def test_since_from_zero_replays_everything_then_goes_live(daemon):
    before = [(await daemon.core.hub.publish(FAKE_RECORD, {"extra": {"n": n}})).seq for n in range(5)]
    async with open_monitor(daemon, since=0) as ws:
        got = [(await next_frame(ws))["Seq"] for _ in before]
        after = (await daemon.core.hub.publish(FAKE_RECORD, {"extra": {"n": 5}})).seq
        got.append((await next_frame(ws))["Seq"])
    assert got == before + [after]


async def test_since_in_the_future_waits_for_that_seq(daemon):
    now = daemon.core.hub.fanned_seq
    async with open_monitor(daemon, since=now + 3) as ws:
        seqs = [(await daemon.core.hub.publish(FAKE_RECORD, {})).seq for _ in range(4)]
        assert seqs[0] == now + 1
        assert (await next_frame(ws))["Seq"] == now + 3
        assert (await next_frame(ws))["Seq"] == now + 4


async def test_replay_survives_a_failing_mapper(daemon):
    first = (await daemon.core.hub.publish(FAKE_RECORD, {})).seq
    await daemon.core.hub.publish(BROKEN_RECORD, {"boom": True})
    last = (await daemon.core.hub.publish(FAKE_RECORD, {})).seq
    async with open_monitor(daemon, since=first) as ws:
        assert [(await next_frame(ws))["Seq"] for _ in range(2)] == [first, last]
        await daemon.core.hub.publish(BROKEN_RECORD, {"boom": True})
        live = (await daemon.core.hub.publish(FAKE_RECORD, {})).seq
        assert (await next_frame(ws))["Seq"] == live

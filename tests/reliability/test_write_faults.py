"""ENOSPC and EIO at the journal's OS-call boundary, below the daemon: publishers are told
(JournalUnavailable) instead of acknowledged, nothing is written twice, writes resume by themselves."""

from __future__ import annotations

import errno
import random
from collections import Counter

import pytest
import trio

from gatewayd.journal.reader import JournalReader
from gatewayd.journal.writer import JournalUnavailable
from gatewayd.gateway import open_core
from tests.conftest import make_settings, wait_for
from tests.reliability.faults import Faults, FaultyFileOps
from tests.reliability.figures import count

ROUNDS = 6


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_random_write_errors_never_ack_unsaved_data_nor_write_twice(tmp_path, round_):
    rng = random.Random(round_)
    faults = Faults()
    faults.rng = random.Random(round_)
    settings = make_settings(tmp_path / "state", journal={"segment_bytes": 8192, "flush_interval_ms": 1})
    acked: list[int] = []
    refused = 0

    async with open_core(settings, online=False, fileops=FaultyFileOps(faults)) as core:
        storm_over = trio.Event()

        async def publisher(first: int) -> None:
            nonlocal refused
            n = first
            while not storm_over.is_set():
                n += 1
                try:
                    await core.hub.publish("test.fault", {"n": n, "pad": "x" * rng.randrange(300)},
                                           durable=n % 5 != 0)
                except JournalUnavailable:
                    refused += 1
                    await trio.sleep(0.002)
                    continue
                if n % 5 != 0:
                    acked.append(n)
                await trio.sleep(0)

        async def storm() -> None:
            for _ in range(30):
                await trio.sleep(rng.uniform(0.001, 0.01))
                faults.fail(rng.choice([errno.ENOSPC, errno.EIO]), calls=rng.choice([("write",), ("sync",),
                            ("write", "sync")]), probability=rng.uniform(0.3, 1.0), short_writes=rng.random() < 0.5)
                await trio.sleep(rng.uniform(0.001, 0.02))
                faults.clear()
            storm_over.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(storm)
            for p in range(12):
                nursery.start_soon(publisher, p * 1_000_000)
        faults.clear()
        await wait_for(lambda: core.writer.failed is None and core.writer.pending_bytes == 0, timeout=10)
        final = await core.hub.publish("test.fault", {"n": -1})

    assert faults.injected > 0 and refused > 0
    reader = JournalReader(settings.state_path / "journal")
    report = reader.verify()
    assert report.ok and report.last_seq == final.seq, report.problems
    written = Counter(r.data["n"] for r in reader.records() if r.type == "test.fault")
    assert max(written.values()) == 1, "a record was written twice"
    missing = [n for n in acked if written[n] != 1]
    assert not missing, f"acknowledged but not in the journal: {missing[:10]}"
    count("write faults injected", faults.injected)
    count("acknowledged records checked after write faults", len(acked))


async def test_a_stuck_disk_turns_into_a_retryable_error_within_the_durable_timeout(tmp_path):
    """fsync that never returns (a dead SD card): publishers are released after durable_timeout."""
    release = trio.Event()
    token = trio.lowlevel.current_trio_token()

    class HangingOps(FaultyFileOps):
        hang = False

        def sync(self, fd):
            if self.hang:
                trio.from_thread.run(release.wait, trio_token=token)
            super().sync(fd)

    ops = HangingOps(Faults())
    settings = make_settings(tmp_path / "state", journal={"durable_timeout": 0.3})
    async with open_core(settings, online=False, fileops=ops) as core:
        await core.hub.publish("test.fault", {"n": 0})
        ops.hang = True
        with trio.fail_after(3):
            with pytest.raises(JournalUnavailable):
                await core.hub.publish("test.fault", {"n": 1})
        ops.hang = False
        release.set()
        await wait_for(lambda: core.writer.durable_seq >= 2, timeout=5)
        await core.hub.publish("test.fault", {"n": 2})
    records = [r.data["n"] for r in JournalReader(settings.state_path / "journal").records() if r.type == "test.fault"]
    assert records == [0, 1, 2]


async def test_an_idle_journal_still_acknowledges_the_next_record(tmp_path):
    """Regression: the stall watcher once failed the empty open batch of an idle journal, so the
    first record after `durable_timeout` of quiet got a JournalUnavailable (and was written anyway)."""
    settings = make_settings(tmp_path / "state", journal={"durable_timeout": 0.2})
    async with open_core(settings, online=False) as core:
        await core.hub.publish("test.fault", {"n": 0})
        await trio.sleep(0.5)  # the idle period itself is what is under test
        await core.hub.publish("test.fault", {"n": 1})

"""The dedup window as plain code: copies join an open frame, late ones are refused while the frame
is remembered, and remembered frames are forgotten in time order."""

from __future__ import annotations

from types import SimpleNamespace

from gatewayd.connectors.lorawan.dedup import Copy, Deduper


def copy(gateway: str, at: float) -> Copy:
    return Copy(gateway, SimpleNamespace(lsnr=5.0), at)


def test_copies_join_late_ones_are_refused_until_the_hold_is_over():
    dedup = Deduper(window=0.2, hold=10.0)
    assert dedup.offer(b"A", None, 5, copy("g1", 0.0)) == "new"
    assert dedup.offer(b"A", None, 5, copy("g2", 0.1)) == "copy"
    [due] = dedup.pop_due(0.3)
    assert sorted(due.copies) == ["g1", "g2"]
    assert dedup.offer(b"A", None, 5, copy("g3", 5.0)) == "late"
    dedup.pop_due(10.4)  # the hold is over: forgotten
    assert dedup.offer(b"A", None, 5, copy("g1", 10.5)) == "new"


def test_a_frame_closed_again_is_remembered_from_its_last_close():
    dedup = Deduper(window=0.2, hold=10.0)
    dedup.offer(b"A", None, 5, copy("g1", 0.0))
    dedup.pop_due(0.3)
    dedup.offer(b"A", None, 5, copy("g1", 20.0))  # the same bytes again after the hold (a replay)
    dedup.offer(b"B", None, 5, copy("g1", 20.0))
    dedup.pop_due(20.3)
    dedup.pop_due(25.0)
    assert dedup.offer(b"A", None, 5, copy("g2", 25.0)) == "late"
    assert len(dedup._closed) == 2


def test_forgetting_costs_the_same_however_many_were_forgotten_before():
    dedup = Deduper(window=0.0, hold=1.0)
    for n in range(50_000):
        dedup.offer(b"%d" % n, None, 5, copy("g1", n / 1000))
        dedup.pop_due(n / 1000)
    assert len(dedup._closed) <= 1001 and len(dedup._expiry) == len(dedup._closed)

"""The dashboard's hand-over store: taken once, expires, bounded in slots, sessions and size."""

from __future__ import annotations

from gatewayd.web import handover
from gatewayd.web.handover import Handover


def test_taken_once_and_expires():
    now = [0.0]
    store = Handover(clock=lambda: now[0])
    store.put("s1", "token", "tok_1")
    assert store.take("s2", "token") is None  # another session's
    assert store.take("s1", "token") == "tok_1" and store.take("s1", "token") is None
    store.put("s1", "token", "tok_2")
    now[0] += handover.KEEP_SECONDS + 1
    assert store.take("s1", "token") is None and len(store) == 0 and store.total_size == 0


def test_bounded_by_slots_sessions_and_size():
    store = Handover(max_total_size=10_000)
    for n in range(handover.MAX_SLOTS_PER_SESSION + 3):
        store.put("s1", f"slot{n}", n)
    assert len(store) == handover.MAX_SLOTS_PER_SESSION and store.take("s1", "slot0") is None
    for n in range(5):
        store.put(f"big{n}", "import", "rows", size=4_000)
    assert store.total_size <= 10_000
    assert store.take("big4", "import") == "rows" and store.take("big0", "import") is None
    assert store.take("s1", "slot10") is None  # the oldest session went first
    store.put("huge", "import", "rows", size=50_000)  # alone over the bound: the newest stays
    assert store.take("huge", "import") == "rows" and store.total_size == 0

"""Merging the copies of one frame heard by several gateways.

The first copy opens a window (lorawan.dedup_window_ms); copies arriving inside it join; when it
closes the frame is decided once. A copy of an already decided frame that straggles in shortly
after (within `hold` seconds) is a late copy, not a retransmission: a device repeats a frame only
after its receive windows, several seconds later.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import packets


@dataclass(slots=True)
class Copy:
    gateway: str
    rx: packets.RxPacket
    arrived: float  # trio clock
    context: Any = None  # what a Station gateway needs to answer this copy (None: a packet forwarder's)


@dataclass(slots=True)
class Pending:
    phy: bytes
    frame: Any  # lorawan.DataFrame | lorawan.JoinRequest
    dr: int
    deadline: float
    copies: dict[str, Copy] = field(default_factory=dict)  # one per gateway

    @property
    def first(self) -> Copy:
        return next(iter(self.copies.values()))


def _snr(copy: Copy) -> float:
    return copy.rx.lsnr if copy.rx.lsnr is not None else -99.0


class Deduper:
    def __init__(self, window: float, hold: float, max_open: int = 20_000):
        self.window = window
        self.hold = hold
        self.max_open = max_open
        self._open: dict[bytes, Pending] = {}
        self._order: deque[Pending] = deque()
        self._closed: dict[bytes, float] = {}  # phy -> until
        # (until, phy) in time order. Not the dict's own order: taking a dict's first key after
        # deleting many before it walks over every deleted slot, each time.
        self._expiry: deque[tuple[float, bytes]] = deque()

    def __len__(self) -> int:
        return len(self._open)

    def offer(self, phy: bytes, frame: Any, dr: int, copy: Copy) -> str:
        """"new", "copy" (joined an open window), "late" (frame already decided) or "full"."""
        pending = self._open.get(phy)
        if pending is not None:
            known = pending.copies.get(copy.gateway)
            if known is None or _snr(copy) > _snr(known):
                pending.copies[copy.gateway] = copy
            return "copy"
        until = self._closed.get(phy)
        if until is not None and until > copy.arrived:
            return "late"
        if len(self._open) >= self.max_open:
            return "full"
        pending = Pending(phy, frame, dr, copy.arrived + self.window, {copy.gateway: copy})
        self._open[phy] = pending
        self._order.append(pending)
        return "new"

    def next_deadline(self) -> float | None:
        return self._order[0].deadline if self._order else None

    def pop_due(self, now: float) -> list[Pending]:
        due = []
        order, closed, expiry = self._order, self._closed, self._expiry
        until = now + self.hold
        while order and order[0].deadline <= now:
            pending = order.popleft()
            del self._open[pending.phy]
            closed[pending.phy] = until
            expiry.append((until, pending.phy))
            due.append(pending)
        while expiry:
            first, phy = expiry[0]
            if first > now and len(expiry) <= 4 * self.max_open:
                break
            expiry.popleft()
            if closed.get(phy) == first:  # not closed again since
                del closed[phy]
        return due

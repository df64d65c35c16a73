"""The journal as an outbox: which seq the broker has confirmed, pacing, backoff (pure, no I/O).

One record gives zero or more messages. A record is done when the broker acknowledged every message
it gave (PUBACK); the cursor is the last seq such that it and every record before it are done.
PUBACKs may come in any order; the cursor only moves over a contiguous run.
"""

from __future__ import annotations

import random
from collections import deque


class AckTracker:
    def __init__(self, acked_seq: int):
        self.acked_seq = acked_seq  # every record up to here is done
        # [seq, outstanding] per record not yet done, in seq order. A record being published holds
        # one extra count until `end` so an early PUBACK cannot complete it half-way.
        self._open: deque[list[int]] = deque()
        self._by_mid: dict[int, list[int]] = {}

    @property
    def in_flight(self) -> int:
        """Messages sent and not yet acknowledged."""
        return len(self._by_mid)

    @property
    def open_records(self) -> int:
        return len(self._open)

    def begin(self, seq: int) -> None:
        self._open.append([seq, 1])

    def sent(self, mid: int) -> None:
        entry = self._open[-1]
        entry[1] += 1
        self._by_mid[mid] = entry

    def end(self) -> bool:
        """The record being published has all its messages out. True when the cursor moved."""
        entry = self._open[-1]
        entry[1] -= 1
        return entry[1] == 0 and self._advance()

    def skip(self, seq: int) -> bool:
        """A record without messages: done at once (it only waits for those before it)."""
        if not self._open:
            self.acked_seq = seq
            return True
        last = self._open[-1]
        if last[1] == 0:
            last[0] = seq  # consecutive finished records collapse into one entry
        else:
            self._open.append([seq, 0])
        return False

    def acked(self, mid: int) -> bool:
        """A PUBACK. True when the cursor moved; unknown mids (a previous connection's) are ignored."""
        entry = self._by_mid.pop(mid, None)
        if entry is None:
            return False
        entry[1] -= 1
        return entry[1] == 0 and self._advance()

    def _advance(self) -> bool:
        moved = False
        while self._open and self._open[0][1] == 0:
            self.acked_seq = self._open.popleft()[0]
            moved = True
        return moved


class Pacer:
    """At most `rate` items per second on average, with a burst of one second's worth (rate 0: no
    limit). `delay(now)` is how long to wait before the next item may go."""

    def __init__(self, rate: float, now: float):
        self.rate = rate
        self._allowance = 0.0
        self._stamp = now

    def delay(self, now: float, rate: float | None = None) -> float:
        if rate is not None and rate != self.rate:
            self.rate = rate
        if self.rate <= 0:
            return 0.0
        self._allowance = min(self.rate, self._allowance + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._allowance >= 1.0:
            self._allowance -= 1.0
            return 0.0
        wait = (1.0 - self._allowance) / self.rate
        self._allowance -= 1.0  # taken now, paid for by the wait
        return wait


class RateMeter:
    """Events per second over the last `window` seconds, from a count sampled once a second."""

    def __init__(self, window: int = 10):
        self._samples: deque[tuple[float, int]] = deque(maxlen=window + 1)

    def sample(self, now: float, total: int) -> None:
        self._samples.append((now, total))

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def backoff_delay(attempt: int, maximum: float, rng: random.Random | None = None) -> float:
    """Seconds before reconnection attempt `attempt` (1, 2, ...): 1 s doubling up to `maximum`,
    with full jitter in its upper half so appliances that lost the same broker do not return in step."""
    ceiling = min(maximum, 2.0 ** max(0, attempt - 1))
    return ceiling * (0.5 + 0.5 * (rng or random).random())

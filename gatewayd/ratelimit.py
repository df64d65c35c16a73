"""Small, bounded rate limiters with an injectable clock."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from typing import Callable


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class FailureLimiter:
    """Counts failures per source within a sliding minute; at most `max_sources` are tracked."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_sources: int = 10_000):
        self.per_minute = per_minute
        self.clock = clock
        self.max_sources = max_sources
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, source: str) -> list[float]:
        now = self.clock()
        stamps = [t for t in self._failures.get(source, ()) if now - t < 60.0]
        if stamps:
            self._failures[source] = stamps
            self._failures.move_to_end(source)
        else:
            self._failures.pop(source, None)
        return stamps

    def blocked(self, source: str) -> bool:
        return len(self._recent(source)) >= self.per_minute

    def failed(self, source: str) -> None:
        stamps = self._recent(source)
        stamps.append(self.clock())
        self._failures[source] = stamps
        self._failures.move_to_end(source)
        while len(self._failures) > self.max_sources:
            self._failures.popitem(last=False)

    def succeeded(self, source: str) -> None:
        self._failures.pop(source, None)


def source_key(address: str) -> str:
    """What per-source limits count: an IPv4 address, or the /64 network of an IPv6 address (one
    host commonly holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class KeyedBuckets:
    """One token bucket per key (e.g. per source address); at most `max_keys` remembered, the least
    recently used forgotten first (a forgotten key starts again with a full bucket)."""

    def __init__(self, max_keys: int = 10_000):
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float, rate: float, burst: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, burst, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.rate, bucket.burst = rate, burst  # settings may be reloaded
        return bucket.take(now)

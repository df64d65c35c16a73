"""Ingest first: while the daemon is saturated by incoming records, webhooks slow down.

Forwarding can wait (its backlog is in the journal); devices cannot. When the event loop is busy
(`LoopLoad.busy()` at or above BUSY_FROM) and records are arriving (at least ARRIVING_PER_SECOND),
the senders together spend at most SHARE of the time in requests: with n senders, after a request
that took d seconds a sender's next one waits d * (n / SHARE - 1). Each sender paces only itself, so
a hanging endpoint slows no other. Otherwise they run freely, so a backlog alone (a restart, an
endpoint back after an outage) is sent at full speed.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable, TypeVar

import trio

BUSY_FROM = 0.7
ARRIVING_PER_SECOND = 50.0
SHARE = 0.05
SAMPLE_EVERY = 0.1  # seconds between looks at the arrival rate

T = TypeVar("T")


class Pacer:
    def __init__(self, busy: Callable[[], float], appended: Callable[[], int], clock=time.monotonic, *,
                 senders: Callable[[], int] = lambda: 1):
        self._busy = busy
        self._appended = appended
        self._senders = senders
        self._clock = clock
        self._sampled_at = clock()
        self._sampled = appended()
        self._rate = 0.0
        self.paced = 0  # requests that waited their turn

    def saturated(self) -> bool:
        now = self._clock()
        if now - self._sampled_at >= SAMPLE_EVERY:
            count = self._appended()
            self._rate = (count - self._sampled) / (now - self._sampled_at)
            self._sampled, self._sampled_at = count, now
        return self._rate >= ARRIVING_PER_SECOND and self._busy() >= BUSY_FROM

    async def run(self, request: Callable[[], Awaitable[T]]) -> T:
        if not self.saturated():
            return await request()
        self.paced += 1
        began = self._clock()
        result = await request()
        await trio.sleep((self._clock() - began) * (max(1, self._senders()) / SHARE - 1))
        return result

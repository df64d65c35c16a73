"""How busy the event loop is: the share of time it spends running tasks, not waiting for I/O.

trio tells an instrument when it goes to wait for I/O and when it comes back; the time spent
outside those waits is work (and so is a wait with a zero timeout: a poll between batches of
ready tasks). Work that can wait (the monitors' writes) asks `busy()`, so a saturated daemon
spends its time on ingest first.
"""

from __future__ import annotations

import time

import trio

WINDOW = 0.25  # seconds per measurement; `busy()` is the last full window, smoothed


class LoopLoad(trio.abc.Instrument):
    def __init__(self, clock=time.perf_counter):
        self._clock = clock
        self._window_start = clock()
        self._waited = 0.0  # in I/O waits during the current window
        self._wait_began: float | None = None
        self._busy = 0.0

    def before_io_wait(self, timeout: float) -> None:
        # A poll with no timeout (tasks are waiting to run) is part of the work, not idle time.
        if timeout > 0:
            self._wait_began = self._clock()

    def after_io_wait(self, timeout: float) -> None:
        now = self._clock()
        if self._wait_began is not None:
            self._waited += now - self._wait_began
            self._wait_began = None
        elapsed = now - self._window_start
        if elapsed >= WINDOW:
            share = max(0.0, 1.0 - self._waited / elapsed)
            self._busy = share if elapsed > 4 * WINDOW else (self._busy + share) / 2
            self._window_start, self._waited = now, 0.0

    def busy(self) -> float:
        """0 (idle) .. 1 (never waits), over the last window or two."""
        if self._wait_began is not None and self._clock() - self._wait_began > WINDOW:
            return 0.0  # waiting for a long time now: idle, whatever the last window said
        return self._busy

"""Garbage-collector and allocator settings for the daemon process.

With thousands of open connections the heap holds millions of long-lived objects (hypercorn, quart
and trio keep a few hundred per WebSocket), and CPython's default thresholds (700, 10, 10) make the
collector walk them over and over: under a reconnect storm of 6,000 devices it took half of the
daemon's CPU time, with pauses of up to 2.7 s that stalled every connection. Reference counting frees
almost everything the daemon drops; the collector is only needed for reference cycles (a finished
HTTP connection or cancelled task leaves a few hundred objects in cycles), so it can run far less
often. What is alive once start-up is over (modules, the replayed state) is frozen: the collector
never walks it again, and reference counting still frees it.

With so few automatic collections a quiet daemon would collect its older generations only every
hour or so, and the cycles waiting for it would look like a slow leak; a full collection every
FULL_COLLECTION_INTERVAL seconds bounds that (it walks only what is not frozen: about a second with
10,000 open connections, a few milliseconds on a quiet appliance).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

import trio

log = logging.getLogger("gatewayd.gctune")

# glibc serves blocks above its mmap threshold with mmap and unmaps them when freed, but after such
# a block is freed it raises the threshold (up to 32 MiB) and later blocks of that size come from its
# heaps, which keep them: every password check (scrypt, 16 MiB) then stayed resident in each worker
# thread's heap (500 wrong logins: +140 MiB kept). A fixed threshold turns that adjustment off.
MMAP_THRESHOLD = 1024 * 1024
_M_MMAP_THRESHOLD = -3

# glibc gives each thread that allocates its own heap ("arena") and trims it poorly: the history
# store's catch-up at a first start after a long journal (a worker thread) left ~18 MiB in one for
# good. The daemon's threads take turns on the GIL anyway, so they share the main heap.
_M_ARENA_MAX = -8

# A young collection after this many new container objects instead of 700; older generations as
# CPython does it, a little less often.
THRESHOLDS = (50_000, 20, 20)
FULL_COLLECTION_INTERVAL = 120.0


def tune_for_daemon() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return_large_blocks()
    release_free_memory()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system now (start-up's replay has just freed its
    records: tens of MiB after a long journal). Where the C library is not glibc: nothing."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


def share_one_heap() -> bool:
    """Make every thread allocate from glibc's main heap (see _M_ARENA_MAX); call before threads
    start. False where the C library is not glibc (nothing changed)."""
    try:
        return bool(ctypes.CDLL(ctypes.util.find_library("c")).mallopt(_M_ARENA_MAX, 1))
    except (OSError, AttributeError, TypeError):
        return False


def return_large_blocks(threshold: int = MMAP_THRESHOLD) -> bool:
    """Make glibc give freed blocks above `threshold` back to the kernel (see MMAP_THRESHOLD).
    False where the C library is not glibc (nothing changed)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError, TypeError):
        ok = False
    if not ok:
        log.debug("allocator: mmap threshold not set (not glibc)")
    return ok


async def collect_periodically(interval: float = FULL_COLLECTION_INTERVAL) -> None:
    """Run until cancelled: a full collection every `interval` seconds."""
    while True:
        await trio.sleep(interval)
        gc.collect()

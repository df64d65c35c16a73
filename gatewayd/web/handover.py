"""What a dashboard form handler hands to the page it redirects to (POST-redirect-GET): the values
and per-field errors of a refused form, or a secret to show once (a new token or API key).

Kept in this process's memory per dashboard session, taken by the first page that reads it, and
gone after a few minutes: never in a cookie, a log or the journal. A restart drops what was not
yet shown (the operator rotates the token again). Memory is bounded: slots per session, sessions,
and the total size callers declare (an import preview is up to a file's size); past a bound the
oldest go first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable

KEEP_SECONDS = 300.0
MAX_SLOTS_PER_SESSION = 8
MAX_SESSIONS = 1000
MAX_TOTAL_SIZE = 64 * 1024 * 1024
SMALL = 1024  # the size assumed for a value whose caller gives none


class Handover:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_total_size: int = MAX_TOTAL_SIZE):
        self.clock = clock
        self.max_total_size = max_total_size
        self.total_size = 0
        self._sessions: OrderedDict[str, dict[str, tuple[float, int, Any]]] = OrderedDict()

    def put(self, sid: str, slot: str, value: Any, size: int = SMALL) -> None:
        slots = self._sessions.pop(sid, {})
        self._drop(slots, slot)
        slots[slot] = (self.clock() + KEEP_SECONDS, size, value)
        self.total_size += size
        while len(slots) > MAX_SLOTS_PER_SESSION:
            self._drop(slots, next(iter(slots)))
        self._sessions[sid] = slots
        while len(self._sessions) > 1 and (len(self._sessions) > MAX_SESSIONS
                                           or self.total_size > self.max_total_size):
            _, evicted = self._sessions.popitem(last=False)  # the oldest session's, never this one's
            self.total_size -= sum(size for _, size, _ in evicted.values())

    def take(self, sid: str, slot: str) -> Any | None:
        slots = self._sessions.get(sid)
        if not slots or slot not in slots:
            return None
        expires, size, value = slots.pop(slot)
        self.total_size -= size
        if not slots:
            del self._sessions[sid]
        return value if expires > self.clock() else None

    def _drop(self, slots: dict, slot: str) -> None:
        entry = slots.pop(slot, None)
        if entry is not None:
            self.total_size -= entry[1]

    def __len__(self) -> int:
        return sum(len(slots) for slots in self._sessions.values())

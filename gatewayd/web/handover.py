"""What a dashboard form handler hands to the page it redirects to (POST-redirect-GET): the values
and per-field errors of a refused form, or a secret to show once (a new token or API key).

Kept in this process's memory per dashboard session, taken by the first page that reads it, and
gone after a few minutes: never in a cookie, a log or the journal. A restart drops what was not
yet shown (the operator rotates the token again).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable

KEEP_SECONDS = 300.0
MAX_SLOTS_PER_SESSION = 8
MAX_SESSIONS = 1000


class Handover:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._sessions: OrderedDict[str, dict[str, tuple[float, Any]]] = OrderedDict()

    def put(self, sid: str, slot: str, value: Any) -> None:
        slots = self._sessions.pop(sid, {})
        slots.pop(slot, None)
        slots[slot] = (self.clock() + KEEP_SECONDS, value)
        while len(slots) > MAX_SLOTS_PER_SESSION:
            slots.pop(next(iter(slots)))
        self._sessions[sid] = slots
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)

    def take(self, sid: str, slot: str) -> Any | None:
        slots = self._sessions.get(sid)
        if not slots or slot not in slots:
            return None
        expires, value = slots.pop(slot)
        if not slots:
            del self._sessions[sid]
        return value if expires > self.clock() else None

    def __len__(self) -> int:
        return sum(len(slots) for slots in self._sessions.values())

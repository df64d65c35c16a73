"""Live WebSocket connections, so a stop can close every one of them with 1001 itself."""

from __future__ import annotations

from typing import Protocol

import trio


class Closable(Protocol):
    def request_close(self, code: int, reason: str) -> None: ...

    async def closed(self) -> None: ...


class ConnectionSet:
    def __init__(self) -> None:
        self._live: set[Closable] = set()

    def add(self, conn: Closable) -> None:
        self._live.add(conn)

    def discard(self, conn: Closable) -> None:
        self._live.discard(conn)

    def __len__(self) -> int:
        return len(self._live)

    async def close_all(self, code: int, reason: str, timeout: float) -> int:
        """Ask every connection to close and wait (bounded) until they have. Returns how many."""
        live = list(self._live)
        for conn in live:
            conn.request_close(code, reason)
        with trio.move_on_after(timeout):
            for conn in live:
                await conn.closed()
        return len(live)

"""Live WebSocket connections, so a stop can close every one of them with 1001 itself, and the
ones that asked for it get a WebSocket ping now and then from one shared task.

Only connections whose peers may stay silent for long are pinged (monitoring clients, which only
read, and LoRa Basics Station gateways): the ping keeps proxies and NAT from dropping a quiet
connection, and a peer that vanished leaves the ping unacknowledged, so the kernel cuts the
connection within `server.tcp_user_timeout`. Devices and terminals are not pinged: their own
heartbeat (`presence.ws_timeout`) decides. One task pings all of them in turn instead of the web
server keeping a ping task per connection."""

from __future__ import annotations

import logging
from typing import Protocol

import trio

log = logging.getLogger("gatewayd.ws")

PING_INTERVAL = 20.0  # seconds between two pings of one connection


class Closable(Protocol):
    def request_close(self, code: int, reason: str) -> None: ...

    async def closed(self) -> None: ...


class Pingable(Closable, Protocol):
    async def ping(self) -> None: ...


class ConnectionSet:
    def __init__(self) -> None:
        self._live: set[Closable] = set()
        self._pinged: set[Pingable] = set()
        self._pinging: set[Pingable] = set()  # a ping is being written (a stalled peer may hold it)

    def add(self, conn: Closable, *, ping: bool = False) -> None:
        self._live.add(conn)
        if ping:
            self._pinged.add(conn)

    def discard(self, conn: Closable) -> None:
        self._live.discard(conn)
        self._pinged.discard(conn)

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

    async def ping_periodically(self, interval: float | None = None, *,
                                task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Ping every connection added with `ping=True` each `interval` seconds, until cancelled.
        Each ping is written by a short task of its own: a peer that stopped reading blocks only its
        own ping (until the kernel cuts it), and is skipped until that one went out."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                await trio.sleep(interval or PING_INTERVAL)
                for conn in list(self._pinged):
                    if conn not in self._pinging:
                        self._pinging.add(conn)
                        nursery.start_soon(self._ping, conn)

    async def _ping(self, conn: Pingable) -> None:
        try:
            await conn.ping()
        except Exception:  # one connection's failure must not end the pings of the others
            log.exception("a WebSocket ping failed; closing that connection")
            conn.request_close(1011, "internal error")
        finally:
            self._pinging.discard(conn)

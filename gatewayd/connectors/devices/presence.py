"""Who is online: the live WebSocket session per device, handovers between sessions, and the
presence records (device.connected / disconnected / online / offline).

The map `live` holds the one session that speaks for each device. A new registration replaces the
entry and asks the old session to close (4002) in the same step, with no checkpoint in between, so
at every moment exactly one session is live. A session that ends removes the entry only if it is
still the one in the map, and only then is the device offline.

After a restart no session exists, so every device the journal left online is set offline (with the
last-seen time it had) before the daemon accepts connections.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import trio

from ... import secrets_ as sec
from ...journal.record import utc_now_iso
from ...journal.writer import JournalUnavailable
from ...ratelimit import TokenBucket

log = logging.getLogger("gatewayd.presence")


class Session(Protocol):
    device_id: str
    session_id: str
    connector: str

    def request_close(self, code: int, reason: str) -> None: ...

    def wake(self) -> None: ...


class Presence:
    def __init__(self, core):
        self.core = core
        self.live: dict[str, Session] = {}
        self._buckets: dict[str, TokenBucket] = {}

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await self.offline_after_restart()
        task_status.started()

    async def offline_after_restart(self) -> None:
        stale = [d for d in self.core.state.devices.devices.values() if d["online"]]
        if stale:
            await self.core.hub.publish_many([("device.offline", {
                "device_id": d["id"], "name": d["name"], "connector": d.get("connector"),
                "reason": "server restarted", "last_seen": d.get("last_seen")}) for d in stale])
            log.info("presence: %d devices set offline after the restart", len(stale))

    def new_session_id(self) -> str:
        return sec.new_id(6)

    def is_live(self, session: Session) -> bool:
        return self.live.get(session.device_id) is session

    async def attach(self, session: Session, device: dict[str, Any], *, remote: str, dialect: str) -> None:
        """Make `session` the device's live session (the previous one is told to close with 4002),
        then journal the connection durably. JournalUnavailable leaves the session detached."""
        old = self.live.get(session.device_id)
        self.live[session.device_id] = session
        if old is not None:
            old.request_close(4002, "superseded by a newer connection")
        records = [("device.connected", {"device_id": device["id"], "name": device["name"],
                                         "connector": session.connector, "session": session.session_id,
                                         "remote": remote, "dialect": dialect})]
        if not device["online"]:
            records.append(("device.online", {"device_id": device["id"], "name": device["name"],
                                              "connector": session.connector}))
        try:
            await self.core.hub.publish_many(records)
        except BaseException:
            if self.live.get(session.device_id) is session:
                del self.live[session.device_id]
            raise

    def detach(self, session: Session, *, reason: str, code: int | None, last_seen: str | None) -> None:
        """Journal the end of `session` (not durable: this runs in cleanup and must not wait)."""
        still_live = self.live.get(session.device_id) is session
        if still_live:
            del self.live[session.device_id]
        device = self.core.state.devices.get(session.device_id)
        if device is None:
            return
        base = {"device_id": device["id"], "name": device["name"], "connector": session.connector}
        seen = last_seen or device.get("last_seen")
        try:
            self.core.hub.publish_nowait("device.disconnected", {**base, "session": session.session_id,
                                                                 "reason": reason, "code": code, "last_seen": seen})
            if still_live and device["online"]:
                self.core.hub.publish_nowait("device.offline", {**base, "reason": reason, "last_seen": seen})
        except JournalUnavailable as exc:  # at shutdown the journal closes after a bounded wait
            (log.debug if self.core.stopping.is_set() else log.warning)(
                "presence of %s not journaled: %s", device["id"], exc)

    def cut(self, device_id: str, code: int, reason: str) -> bool:
        """Close the device's live session, if any (token rotated, disabled, deleted)."""
        session = self.live.get(device_id)
        if session is None:
            return False
        session.request_close(code, reason)
        return True

    def wake(self, device_id: str) -> None:
        """Tell the device's live session that commands are waiting."""
        session = self.live.get(device_id)
        if session is not None:
            session.wake()

    def allow_message(self, device_id: str) -> bool:
        """Token bucket per device (survives reconnects), from devices.rate_per_second / rate_burst."""
        cfg = self.core.settings.devices
        now = time.monotonic()
        bucket = self._buckets.get(device_id)
        if bucket is None:
            bucket = self._buckets[device_id] = TokenBucket(cfg.rate_per_second, cfg.rate_burst, now)
            if len(self._buckets) > 4 * max(1024, len(self.core.state.devices.devices)):
                self._buckets = {k: v for k, v in self._buckets.items() if k in self.live}
        bucket.rate, bucket.burst = cfg.rate_per_second, cfg.rate_burst
        return bucket.take(now)

    @staticmethod
    def now_iso() -> str:
        return utc_now_iso()

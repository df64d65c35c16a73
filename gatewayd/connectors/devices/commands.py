"""Durable commands from operators (and TX requests) to WebSocket devices.

A command is journaled as queued, sent in queue order by the device's live session (at
registration and whenever a new one is queued), and moved to acknowledged / failed by the
device's `command_result`. Delivery is at least once until the device answers: a command sent on a
session that ended (or before a restart) without an answer is sent again, with the same id, on the
device's next session, up to its `max_attempts` (`devices.command_attempts` when it was queued);
then it fails. Each attempt is journaled (durably) before the frame goes out, so the bound holds
across crashes. A command past its expiry is never sent: the sweeper marks waiting ones expired,
and the session checks again right before sending.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import trio

from ... import secrets_ as sec
from ...journal.record import utc_now_iso
from ...journal.writer import JournalUnavailable
from ...ops import OpError, not_found, operation
from .messages import Command
from ...errors import ProtocolError

log = logging.getLogger("gatewayd.commands")

MAX_EXPIRES_IN = 365 * 86400.0
MAX_SOURCE_CHARS = 64


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CommandService:
    def __init__(self, core):
        self.core = core

    @property
    def part(self):
        return self.core.state.commands

    async def enqueue(self, device_id: str, command: str, payload: dict | None = None, *,
                      expires_in: float | None = None, source: str, reference: str | None = None,
                      confirm: bool = False, actor: str | None = None,
                      window: str | None = None) -> dict[str, Any]:
        """Queue a command durably and wake the device's session. Returns the command."""
        device = self.core.service("devices").require(device_id)
        if device["kind"] != "ws":
            raise OpError("unsupported", f"commands go to WebSocket devices; {device_id} is {device['kind']}", 422)
        payload = {} if payload is None else payload
        command_id = "cmd_" + sec.new_id(8)
        try:
            Command(command_id, command, payload)  # the same checks the device codecs apply
        except ProtocolError as exc:
            message = exc.message.replace("command: ", "", 1)
            raise OpError("invalid", message, 422, field="payload" if "payload" in message else "command") from None
        if expires_in is None:
            expires_in = self.core.settings.devices.command_expiry
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) \
                or not 0 < expires_in <= MAX_EXPIRES_IN:
            raise OpError("invalid", f"expires_in must be a number of seconds in (0, {MAX_EXPIRES_IN:g}]", 422)
        if reference is not None and (not isinstance(reference, str) or len(reference) > 128):
            raise OpError("invalid", "reference must be a string of at most 128 characters", 422)
        data: dict[str, Any] = {
            "device_id": device_id, "command_id": command_id, "command": command, "payload": payload,
            "expires_at": _iso(datetime.now(timezone.utc) + timedelta(seconds=float(expires_in))),
            "source": str(source)[:MAX_SOURCE_CHARS],
        }
        if reference is not None:
            data["reference"] = reference
        if confirm:
            data["confirm"] = True
        if actor:
            data["actor"] = actor
        if window:  # a TX request's receive window, shown again on comm_tx
            data["window"] = window
        data["max_attempts"] = self.core.settings.devices.command_attempts
        await self.core.hub.publish("command.queued", data)
        presence = self.core.services.get("presence")
        if presence is not None:
            presence.wake(device_id)
        return dict(self.part.get(command_id))

    def next_to_send(self, device_id: str, session_id: str) -> dict[str, Any] | None:
        return self.part.to_send(device_id, session_id)

    @staticmethod
    def expired(command: dict[str, Any], now_iso: str | None = None) -> bool:
        return bool(command.get("expires_at")) and command["expires_at"] <= (now_iso or utc_now_iso())

    def _fields(self, command: dict[str, Any]) -> dict[str, Any]:
        data = {"device_id": command["device_id"], "command_id": command["id"], "command": command["command"]}
        if command.get("reference") is not None:
            data["reference"] = command["reference"]
        if command.get("confirm"):
            data["confirm"] = True
        if command.get("window"):
            data["window"] = command["window"]
        return data

    def max_attempts(self, command: dict[str, Any]) -> int:
        return command.get("max_attempts") or self.core.settings.devices.command_attempts

    async def settle_if_due(self, command: dict[str, Any], now_iso: str | None = None) -> bool:
        """Mark a waiting command expired, or failed when its attempts are used up with no answer.
        Returns whether it was settled (then it is never sent again)."""
        if self.expired(command, now_iso):
            await self.mark_expired(command)
            return True
        attempts = command.get("attempts", 0)
        if command["state"] == "sent" and attempts >= self.max_attempts(command):
            await self.mark_failed(command, f"no answer from the device after {attempts} delivery attempt"
                                            f"{'s' if attempts != 1 else ''}")
            return True
        return False

    async def mark_sent(self, command: dict[str, Any], session_id: str) -> None:
        await self.core.hub.publish("command.sent", {**self._fields(command), "payload": command["payload"],
                                                     "session": session_id, "attempt": command.get("attempts", 0) + 1})

    async def mark_expired(self, command: dict[str, Any]) -> None:
        await self.core.hub.publish("command.expired", {**self._fields(command), "expires_at": command["expires_at"]})

    async def mark_failed(self, command: dict[str, Any], error: str) -> None:
        await self.core.hub.publish("command.failed", {**self._fields(command), "error": error[:1024]})

    async def result(self, device_id: str, command_id: str, ok: bool, result: dict | None,
                     error: str | None) -> str:
        """A device's command_result. Returns "" when applied or ignored as a repeat, else why not."""
        command = self.part.get(command_id)
        if command is None or command["device_id"] != device_id:
            return f"no command {command_id!r} for this device"
        if command["state"] not in ("sent", "queued"):
            return ""  # a repeat after a reconnect: already settled
        data = {**self._fields(command), "by": "device"}
        if result is not None:
            data["result"] = result
        if ok:
            await self.core.hub.publish("command.acknowledged", data)
        else:
            data["error"] = (error or "the device reported a failure")[:1024]
            await self.core.hub.publish("command.failed", data)
        return ""

    def session_over(self, command: dict[str, Any]) -> bool:
        presence = self.core.services.get("presence")
        session = presence.live.get(command["device_id"]) if presence is not None else None
        return session is None or session.session_id != command.get("session")

    async def settle_due(self) -> int:
        """Expire queued commands past their expiry; expire or fail (attempts used up) the sent ones
        whose session ended without an answer. A restart ends every session, so the first sweep after
        one decides as the sessions' ends would have. Returns how many were settled."""
        now = utc_now_iso()
        settled = 0
        for command in [*self.part.queued.values(), *self.part.sent.values()]:
            # checked as each comes: a session may have sent it meanwhile
            waiting = command["state"] == "queued" or (command["state"] == "sent" and self.session_over(command))
            if waiting and await self.settle_if_due(command, now):
                settled += 1
        return settled

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                await self.settle_due()
            except JournalUnavailable as exc:  # try again on the next sweep
                log.warning("command sweep failed: %s", exc)
            await trio.sleep(self.core.settings.presence.sweep_interval)


def public(command: dict[str, Any]) -> dict[str, Any]:
    return dict(command)


@operation("device.send")
async def device_send(core, device_id: str, command: str, payload: dict | None = None,
                      expires_in: float | None = None, actor: str = "cli") -> dict[str, Any]:
    return await core.service("commands").enqueue(device_id, command, payload, expires_in=expires_in,
                                                  source=actor or "cli", actor=actor or "cli")


@operation("device.commands")
async def device_commands(core, device_id: str, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    core.service("devices").require(device_id)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 10_000:
        raise OpError("invalid", "limit must be an integer from 0 to 10000", 422)
    commands = core.state.commands.for_device(device_id)
    if state:
        commands = [c for c in commands if c["state"] == state]
    return [public(c) for c in commands[-limit:]] if limit else []


@operation("device.command")
async def device_command(core, device_id: str, command_id: str) -> dict[str, Any]:
    command = core.state.commands.get(command_id)
    if command is None or command["device_id"] != device_id:
        raise not_found("command", command_id)
    return public(command)

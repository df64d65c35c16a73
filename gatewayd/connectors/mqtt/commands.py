"""Commands that arrive on `{prefix}/device/{id}/command/down` and `{prefix}/terminal/{sn}/command/down`.

    WebSocket device:  {"command": "reboot", "payload": {...}, "expires_in": 3600, "reference": "..."}
    LoRaWAN device:    {"port": 5, "payload": "<hex>", "confirmed": false, "reference": "..."}
    any device:        the monitoring stream's TX object ({"function": "TX", ...})
    terminal:          {"command": "opendoor", "params": {"doornum": 1}, "reference": "..."}

Parsing is pure and strict (unknown keys are refused, so a misspelt key is an error rather than
silently ignored); `execute` hands a valid command to the same durable queues as the REST API.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ...northbound.events import TERMINAL
from ...ops import OpError
from ..monitor.resiot import is_eui

MAX_COMMAND_BYTES = 16 * 1024
MAX_NAME_CHARS = 64
MAX_REFERENCE_CHARS = 128
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


class CommandRefused(Exception):
    """A command that is not carried out; `details` goes back to the sender."""

    def __init__(self, details: str):
        super().__init__(details)
        self.details = details


@dataclass(frozen=True)
class DeviceCommand:
    command: str
    payload: dict[str, Any]
    expires_in: float | None
    reference: str | None


@dataclass(frozen=True)
class Downlink:
    port: int
    data: bytes
    confirmed: bool
    reference: str


@dataclass(frozen=True)
class TerminalCommand:
    command: str
    params: dict[str, Any]
    reference: str | None


def parse_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandRefused(f"the command is {len(payload)} bytes; the limit is {MAX_COMMAND_BYTES}")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CommandRefused("the command is not JSON (UTF-8)") from None
    if not isinstance(obj, dict):
        raise CommandRefused("the command must be a JSON object")
    return obj


def is_tx_object(obj: dict[str, Any]) -> bool:
    return any(key.lower() == "function" for key in obj)


def _only(obj: dict[str, Any], allowed: tuple[str, ...], form: str) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise CommandRefused(f"unknown key {', '.join(map(repr, unknown[:5]))[:200]}; {form} takes "
                             f"{', '.join(allowed)}")


def _name(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CommandRefused(f"{key} is required (a string)")
    if len(value) > MAX_NAME_CHARS or not value.isprintable():
        raise CommandRefused(f"{key} must be at most {MAX_NAME_CHARS} printable characters")
    return value


def _reference(obj: dict[str, Any]) -> str | None:
    value = obj.get("reference")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_REFERENCE_CHARS:
        raise CommandRefused(f"reference must be a string of at most {MAX_REFERENCE_CHARS} characters")
    return value


def _table(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise CommandRefused(f"{key} must be a JSON object")
    return value


def parse_device_command(obj: dict[str, Any]) -> DeviceCommand:
    _only(obj, ("command", "payload", "expires_in", "reference"), "a WebSocket device's command")
    expires_in = obj.get("expires_in")
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, (int, float))
                                   or not expires_in > 0):
        raise CommandRefused("expires_in must be a number of seconds above 0")
    return DeviceCommand(_name(obj, "command"), _table(obj, "payload"), expires_in, _reference(obj))


def parse_downlink(obj: dict[str, Any]) -> Downlink:
    _only(obj, ("port", "payload", "confirmed", "reference"), "a LoRaWAN downlink")
    port = obj.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 223:
        raise CommandRefused("port must be a LoRaWAN application port, 1 to 223")
    data = obj.get("payload")
    if not isinstance(data, str) or not _HEX.fullmatch(data):
        raise CommandRefused("payload must be hex digits, two per byte")
    confirmed = obj.get("confirmed", False)
    if not isinstance(confirmed, bool):
        raise CommandRefused("confirmed must be true or false")
    return Downlink(port, bytes.fromhex(data), confirmed, _reference(obj) or "")


def parse_terminal_command(obj: dict[str, Any]) -> TerminalCommand:
    _only(obj, ("command", "params", "reference"), "a terminal command")
    return TerminalCommand(_name(obj, "command"), _table(obj, "params"), _reference(obj))


# -- carrying out ---------------------------------------------------------------------------------------
def _lorawan_eui(core, ident: str, device: dict | None) -> str | None:
    """The DevEUI when `ident` names a LoRaWAN device (by its id, or by its EUI)."""
    part = core.state.parts.get("lorawan")
    if part is None:
        return None
    if device is not None:
        return part.by_device_id.get(ident) if device.get("kind") == "lorawan" else None
    return ident.lower() if is_eui(ident) and part.device(ident.lower()) is not None else None


async def _submit_tx(core, ident: str, obj: dict[str, Any]) -> None:
    from ..monitor.tx_dispatch import submit_tx

    named = next((v for k, v in obj.items() if k.lower() == "deveui"), None)
    if named is None:
        obj = {**obj, "DevEui": ident}
    elif not isinstance(named, str) or named.lower() != ident.lower():
        raise CommandRefused("DevEui names another device than the topic")
    outcome = await submit_tx(core, json.dumps(obj))
    if not outcome.ok:
        raise CommandRefused(outcome.details)


async def execute(core, subject: str, ident: str, payload: bytes) -> None:
    """Queue the command durably, or raise CommandRefused with the reason."""
    obj = parse_object(payload)
    try:
        if subject == TERMINAL:
            command = parse_terminal_command(obj)
            await core.service("terminal_commands").enqueue(ident, command.command, command.params, source="mqtt",
                                                            reference=command.reference)
            return
        device = core.state.devices.get(ident)
        dev_eui = _lorawan_eui(core, ident, device)
        if device is None and dev_eui is None:
            raise CommandRefused(f"no device {ident[:64]!r}")
        if is_tx_object(obj):
            await _submit_tx(core, dev_eui or ident, obj)
        elif dev_eui is not None:
            downlink = parse_downlink(obj)
            await core.service("lorawan").downlinks.enqueue(dev_eui, downlink.port, downlink.data,
                                                            confirm=downlink.confirmed,
                                                            reference=downlink.reference, source="mqtt")
        else:
            command = parse_device_command(obj)
            await core.service("commands").enqueue(ident, command.command, command.payload,
                                                   expires_in=command.expires_in, source="mqtt",
                                                   reference=command.reference, actor="mqtt")
    except OpError as exc:
        raise CommandRefused(exc.message) from None

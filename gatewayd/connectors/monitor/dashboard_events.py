"""Journal records -> the dashboard's live events (pure: the record alone decides the event).

An event is a small JSON object: `seq`, `ts`, `type` (the record type with "_" for ".", e.g.
`device_connected`), `category` (what the event stream filters on), `text` (one readable line),
and the fields the pages need (`device_id`, `sn`, `eui`, `payload`, `state` ...). Fields are
picked by name, never copied wholesale, so hashes and keys in records cannot reach a browser.
Records without a dashboard meaning (and without an action mapper) give no event.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ...comm_tables import CommTables
from ...journal.record import Record
from .core_actions import safe_subject

log = logging.getLogger("gatewayd.dashboard")

CATEGORIES = ("presence", "telemetry", "event", "command", "device", "terminal", "attendance", "gateway",
              "lorawan", "auth", "system")

_PRESENCE_VERBS = {"device.connected": "connected", "device.disconnected": "disconnected",
                   "device.online": "is online", "device.offline": "is offline"}
_DEVICE_VERBS = {"device.created": "created", "device.updated": "changed", "device.deleted": "deleted",
                 "device.enabled": "enabled", "device.disabled": "disabled",
                 "device.token_rotated": "got a new token"}
_MAX_TEXT = 200


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _device_label(data: dict[str, Any]) -> str:
    return str(data.get("name") or data.get("device_id") or "device")


def _presence(record: Record) -> dict[str, Any]:
    data = record.data
    event = {"category": "presence", "device_id": data.get("device_id"), "name": data.get("name"),
             "connector": data.get("connector"), "online": record.type in ("device.connected", "device.online")}
    for key in ("remote", "reason", "code", "last_seen"):
        if data.get(key) is not None:
            event[key] = data[key]
    text = f"{_device_label(data)} {_PRESENCE_VERBS[record.type]}"
    if data.get("remote") and record.type == "device.connected":
        text += f" from {data['remote']}"
    if data.get("reason"):
        text += f" ({_short(data['reason'], 60)})"
    event["text"] = text
    return event


def _telemetry(record: Record) -> dict[str, Any]:
    data = record.data
    payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
    fields = ", ".join(f"{k}={_short(v, 24)}" for k, v in list(payload.items())[:6])
    return {"type": "telemetry", "category": "telemetry", "device_id": data.get("device_id"), "name": data.get("name"),
            "payload": payload, "device_ts": data.get("device_ts"),
            "text": f"{_device_label(data)} telemetry {fields}".rstrip()}


def _device_event(record: Record) -> dict[str, Any]:
    data = record.data
    payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
    return {"category": "event", "device_id": data.get("device_id"), "name": data.get("name"),
            "event": data.get("event"), "payload": payload,
            "text": f"{_device_label(data)} event {_short(data.get('event', ''), 40)}"}


def _command(record: Record) -> dict[str, Any]:
    data = record.data
    state = record.type.split(".", 1)[1]
    event = {"category": "command", "device_id": data.get("device_id"), "command_id": data.get("command_id"),
             "command": data.get("command"), "state": state}
    if record.type == "command.queued":
        event["payload"] = data.get("payload") if isinstance(data.get("payload"), dict) else {}
        event["expires_at"] = data.get("expires_at")
    for key in ("result", "error", "reference"):
        if data.get(key) is not None:
            event[key] = data[key]
    event["text"] = f"command {_short(data.get('command', ''), 40)} to {data.get('device_id')} {state}"
    if data.get("error"):
        event["text"] += f": {_short(data['error'], 60)}"
    return event


def _device_registry(record: Record) -> dict[str, Any]:
    data = record.data
    event = {"category": "device", "device_id": data.get("device_id"), "name": data.get("name"),
             "actor": data.get("actor")}
    if record.type == "device.created":
        event.update(kind=data.get("kind"), tags=list(data.get("tags") or []))
    if record.type == "device.updated" and isinstance(data.get("changes"), dict):
        event["changes"] = {k: v for k, v in data["changes"].items() if k in ("name", "tags")}
    event["text"] = f"device {_device_label(data)} {_DEVICE_VERBS[record.type]}"
    if data.get("actor"):
        event["text"] += f" by {data['actor']}"
    return event


def _terminal(record: Record) -> dict[str, Any]:
    data = record.data
    kind = record.type.split(".", 1)[1]
    event = {"category": "terminal", "sn": data.get("sn"), "connector": data.get("connector")}
    for key in ("actor", "remote", "reason", "status", "command", "command_id", "held", "dropped",
                "name"):
        if isinstance(data.get(key), (str, int)):
            event[key] = data[key]
    if kind.startswith("command_"):
        event["category"] = "command"
        event["state"] = kind.split("_", 1)[1]
        event["text"] = f"terminal {data.get('sn')} command {data.get('command', '')} {event['state']}"
    else:
        if kind in ("online", "offline", "rejected", "deleted"):
            event["online"] = kind == "online"
        event["text"] = f"terminal {data.get('sn')} {kind.replace('_', ' ')}"
        if kind == "held":
            event["text"] = f"terminal {data.get('sn')}: {data.get('held')} punches kept until it is approved"
    return event


def _attendance(record: Record) -> dict[str, Any]:
    data = record.data
    count = len(data.get("punches") or [])
    held = bool(data.get("held"))
    return {"category": "attendance", "sn": data.get("source"), "connector": data.get("connector"),
            "count": count, "held": held,
            "text": f"{count} punch{'es' if count != 1 else ''} from {data.get('source')}"
                    + (" (held until approved)" if held else "")}


def _auth(record: Record) -> dict[str, Any]:
    data = record.data
    if record.type == "auth.login":
        return {"category": "auth", "user": data.get("user"), "source": data.get("source"),
                "text": f"{data.get('user')} logged in from {data.get('source')}"}
    kind = str(data.get("kind") or "")
    subject = safe_subject(kind, str(data.get("subject") or ""), str(data.get("user_hash") or ""))
    return {"category": "auth", "kind": kind, "source": data.get("source"), "subject": subject,
            "text": f"failed {kind.replace('_', ' ')} from {data.get('source')}"
                    + (f" ({_short(subject, 40)})" if subject else "")}


def _gateway(record: Record) -> dict[str, Any] | None:
    data = record.data
    if record.type == "gateway.alive":
        if data.get("came_online"):
            kind = "online"
        elif data.get("kind") == "stat":
            kind = "stat"
        else:
            return None  # keep-alives every few seconds: too many to show
        event = {"category": "gateway", "eui": data.get("eui"), "online": True,
                 "text": f"gateway {data.get('eui')} {kind}"}
        if isinstance(data.get("stat"), dict):
            event["stat"] = {k: v for k, v in data["stat"].items() if isinstance(v, (int, float, str))}
        event["type"] = f"gateway_{kind}"
        return event
    verb = record.type.split(".", 1)[1]
    event = {"category": "gateway", "eui": data.get("eui"), "online": False if verb == "offline" else None,
             "text": f"gateway {data.get('eui')} {verb}"}
    if isinstance(data.get("name"), str) and data["name"]:
        event["name"] = data["name"]
    return event


_FOREIGN_REASONS = {"unknown_devaddr": "no device of ours has this DevAddr",
                    "bad_mic": "the DevAddr is ours but the frame's MIC does not match its keys"}


def _foreign_uplink(record: Record) -> dict[str, Any]:
    """A frame of a LoRaWAN device that is not ours (recorded within lorawan.foreign_frames_per_second)."""
    data = record.data
    euis = [str(c.get("eui")) for c in data.get("gateways") or () if isinstance(c, dict)]
    reason = str(data.get("reason") or "")
    event = {"category": "lorawan", "dev_addr": data.get("dev_addr"), "reason": reason,
             "reason_text": _FOREIGN_REASONS.get(reason, reason), "fcnt": data.get("fcnt"),
             "mtype": data.get("mtype"), "gateways": euis,
             "text": f"uplink from an unknown device, DevAddr {data.get('dev_addr')} "
                     f"({_FOREIGN_REASONS.get(reason, reason)})"}
    if euis:
        event["eui"] = euis[0]
    return event


_RENDERERS: dict[str, Callable[[Record], dict[str, Any] | None]] = {
    "lorawan.foreign_uplink": _foreign_uplink,
    **{t: _presence for t in _PRESENCE_VERBS},
    **{t: _device_registry for t in _DEVICE_VERBS},
    "device.telemetry": _telemetry,
    "device.event": _device_event,
    **{f"command.{s}": _command for s in ("queued", "sent", "acknowledged", "failed", "expired")},
    "attendance.punches": _attendance,
    "auth.login": _auth,
    "auth.failed": _auth,
    **{f"gateway.{s}": _gateway for s in ("added", "removed", "alive", "offline")},
}


def _category_of(record_type: str) -> str:
    domain = record_type.split(".", 1)[0]
    return {"terminal": "terminal", "gateway": "gateway", "lorawan": "lorawan", "apikey": "system",
            "admin": "system", "auth": "auth"}.get(domain, "system")


def _from_action(record: Record, tables: CommTables) -> dict[str, Any] | None:
    action = tables.action(record)
    if action is None:
        return None
    details = {k: v for k, v in action.details.items() if isinstance(v, (str, int, float, bool)) or v is None}
    words = action.action_type.replace("_", " ").replace(".", " ")
    text = words
    if action.target and action.target not in words.split():
        text += f": {action.target}"
    if isinstance(details.get("name"), str) and details["name"]:
        text += f" ({_short(details['name'], 40)})"
    if action.actor and action.actor not in ("gatewayd", action.target):
        text += f" by {_short(action.actor, 40)}"
    return {"category": _category_of(record.type), "actor": action.actor, "target": action.target,
            "details": details, "text": text}


def accepts(record: Record, tables: CommTables) -> bool:
    """Cheap pre-filter for the hub subscription: could this record give an event? (`tables`: the
    connectors' mappers, core.comms)"""
    return record.type in _RENDERERS or record.type.startswith("terminal.") or record.type in tables.action_mappers


def render(record: Record, tables: CommTables) -> dict[str, Any] | None:
    """The record's event, or None. A renderer that fails costs its record's event, nothing more."""
    renderer = _RENDERERS.get(record.type)
    try:
        if renderer is not None:
            event = renderer(record)
        elif record.type.startswith("terminal."):
            event = _terminal(record)
        else:
            event = _from_action(record, tables)
    except Exception:
        log.exception("dashboard: no event for %s (seq %d)", record.type, record.seq)
        return None
    if event is None:
        return None
    event.setdefault("type", record.type.replace(".", "_"))
    event["text"] = _short(event.get("text") or event["type"], _MAX_TEXT)
    event["seq"] = record.seq
    event["ts"] = record.ts
    return event

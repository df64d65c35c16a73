"""WebSocket devices on the monitoring streams: their records as communications (connector "ws")
and actions, and TX requests for them turned into durable commands."""

from __future__ import annotations

import json
from datetime import tzinfo
from itertools import islice
from typing import Any, Iterable

import orjson

from ...comm_tables import Comms, each
from ...journal.record import Record, parse_ts
from ...ops import OpError
from ..monitor.resiot import (COMM_JOIN, COMM_RX, COMM_TX, COMM_TXCONFIRM, Action, CommHead, Communication, json_text,
                              extra_text, plain_envelope_text, record_dt_text)
from ..monitor.tx_request import DEFAULT_TX_WINDOW, TxRequest

CONNECTOR = "ws"
MAX_EXTRA_FIELDS = 32


_PAYLOAD_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # one for every record


def _json_bytes(payload: Any) -> bytes:
    return _PAYLOAD_JSON.encode(payload).encode("utf-8", "surrogatepass")


def _flat(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        return {}
    return {k: v for k, v in list(payload.items())[:MAX_EXTRA_FIELDS] if not isinstance(v, (dict, list))}


def _comm(record: Record, comm_type: str, **fields: Any) -> Communication:
    return Communication(comm_type=comm_type, connector=record.data.get("connector") or CONNECTOR,
                         dev_eui=record.data["device_id"], dt=parse_ts(record.ts), seq=record.seq, **fields)


def _port(payload: Any) -> int | None:
    port = payload.get("port") if isinstance(payload, dict) else None
    return port if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 255 else None


def _uplink(record: Record) -> Iterable[Communication]:
    data = record.data
    if data.get("connector", CONNECTOR) != CONNECTOR:
        return []
    return [_comm(record, COMM_RX, payload=_json_bytes(data.get("payload", {})), extra=_uplink_extra(record))]


def _uplink_extra(record: Record) -> dict[str, Any]:
    data = record.data
    kind = record.type.split(".", 1)[1]
    extra: dict[str, Any] = {"type": kind}
    if kind == "event":
        extra["event"] = data["event"]
    for key in ("msg_id", "device_ts", "dialect"):
        if data.get(key) is not None:
            extra[key] = data[key]
    extra.update({k: v for k, v in _flat(data.get("payload")).items() if k not in extra})
    return extra


# -- the live stream's fast form of an uplink (the same text as _uplink's envelope) ----------------
def _uplink_heads(record: Record) -> list:
    data = record.data
    if data.get("connector", CONNECTOR) != CONNECTOR:
        return []
    return [(CommHead(COMM_RX, CONNECTOR, data["device_id"], record.seq), _uplink_envelope)]


def _uplink_envelope(record: Record, zone: tzinfo) -> str:
    data = record.data
    payload = data.get("payload", {})
    return plain_envelope_text(COMM_RX, CONNECTOR, data["device_id"], _payload_bytes(payload).hex(),
                               json_text(_uplink_extra_text(record, payload)), record_dt_text(record.ts, zone),
                               record.seq)


def _uplink_extra_text(record: Record, payload: Any) -> dict[str, str]:
    """stringified_extra(_uplink_extra(record)) in one pass."""
    data = record.data
    kind = record.type.split(".", 1)[1]
    taken = ["type"]  # the keys before the payload's (those are distinct, so only these can clash)
    out = {"type": kind}
    fixed = ("event", "msg_id", "device_ts", "dialect") if kind == "event" else ("msg_id", "device_ts", "dialect")
    for key in fixed:
        value = data[key] if key == "event" else data.get(key)
        if value is None:
            if key == "event":
                taken.append(key)  # in the Extra as None, which leaves it out
            continue
        taken.append(key)
        text = value if type(value) is str else extra_text(value)
        if text is not None:
            out[key] = text
    if isinstance(payload, dict):
        for key, value in (payload.items() if len(payload) <= MAX_EXTRA_FIELDS
                           else islice(payload.items(), MAX_EXTRA_FIELDS)):
            if key in taken:
                continue
            value_kind = type(value)
            if value_kind is str:
                text = value
            elif value_kind is int or value_kind is float:
                text = str(value)
            elif isinstance(value, (dict, list)):
                continue
            else:
                text = extra_text(value)
                if text is None:
                    continue
            out[key if type(key) is str else str(key)] = text
    return out


def _payload_bytes(payload: Any) -> bytes:
    """_json_bytes(payload), by orjson where it writes the same bytes: it does for text, integers,
    booleans, null, dicts and lists, and for floats that Python writes without an exponent (digit
    for digit; 1e+16 would be 1e16). What orjson refuses (a key that is not text, text with a lone
    surrogate, an integer past 64 bits) is left to _json_bytes, and so is any other float."""
    kind = type(payload)
    if kind is dict or kind is list:
        plain = _floats_written_alike(payload.values() if kind is dict else payload, 0)
    else:
        plain = kind is not float or 1e-4 <= abs(payload) < 1e16 or payload == 0
    if plain:
        try:
            return orjson.dumps(payload)
        except TypeError:
            pass
    return _json_bytes(payload)


def _floats_written_alike(items: Iterable[Any], depth: int) -> bool:
    for item in items:
        kind = type(item)
        if kind is float:
            if not (1e-4 <= abs(item) < 1e16 or item == 0):
                return False
        elif kind is dict or kind is list:
            if depth >= 64 or not _floats_written_alike(item.values() if kind is dict else item, depth + 1):
                return False
        elif not (kind is str or kind is int or kind is bool or item is None):
            return False  # a subclass, a tuple...: _json_bytes decides
    return True


def _join(record: Record) -> Iterable[Communication]:
    data = record.data
    if data.get("connector") != CONNECTOR:
        return []
    extra = {"type": "register", "name": data.get("name"), "dialect": data.get("dialect"),
             "remote": data.get("remote"), "session": data.get("session")}
    return [_comm(record, COMM_JOIN, extra={k: v for k, v in extra.items() if v is not None})]


def _tx(record: Record) -> Iterable[Communication]:
    data = record.data
    payload = data.get("payload", {})
    return [_comm(record, COMM_TX, payload=_asked_bytes(data), port=_port(payload), command=data["command"],
                  reference=data.get("reference"), confirmation=bool(data.get("confirm")),
                  window=data.get("window") or DEFAULT_TX_WINDOW,
                  extra={"type": "command", "command_id": data["command_id"]})]


def _asked_bytes(data: dict[str, Any]) -> bytes:
    """What was asked to be sent: a TX request's own bytes (its command carries the request's
    window), otherwise the command's JSON payload."""
    payload = data.get("payload", {})
    if data.get("window") and isinstance(payload, dict) and isinstance(payload.get("data"), str):
        try:
            return bytes.fromhex(payload["data"])
        except ValueError:
            pass
    return _json_bytes(payload)


def _txconfirm(record: Record) -> Iterable[Communication]:
    data = record.data
    if not data.get("confirm"):
        return []
    return [_comm(record, COMM_TXCONFIRM, reference=data.get("reference"),
                  payload=_json_bytes(data["result"]) if data.get("result") is not None else b"",
                  extra={"type": "command_result", "command_id": data["command_id"], "command": data["command"]})]


# -- actions --------------------------------------------------------------------------------------------
_DETAIL_KEYS = ("name", "kind", "tags", "changes", "connector", "reason", "code", "remote", "session", "dialect",
                "last_seen", "command_id", "command", "source", "reference", "expires_at", "error")


_ACTION_RECORDS = ("device.created", "device.updated", "device.deleted", "device.enabled", "device.disabled",
                   "device.token_rotated", "device.connected", "device.disconnected", "device.online",
                   "device.offline", "command.queued", "command.sent", "command.acknowledged", "command.failed",
                   "command.expired")


def _action(record: Record) -> Action:
    data = record.data
    details = {k: data[k] for k in _DETAIL_KEYS if data.get(k) is not None}
    if isinstance(data.get("lorawan"), dict):
        details["dev_eui"] = data["lorawan"].get("dev_eui")
    actor = data.get("actor") or (f"device:{data['device_id']}" if record.type.startswith("device.") else "gatewayd")
    return Action(record.type.replace(".", "_"), actor, data["device_id"], details, parse_ts(record.ts), record.seq)


# -- TX -------------------------------------------------------------------------------------------------
class WsTxHandler:
    connector = CONNECTOR

    def owns(self, core, dev_key: str) -> bool:
        device = core.state.devices.get(dev_key)
        return device is not None and device["kind"] == CONNECTOR

    async def submit(self, core, dev_key: str, tx: TxRequest) -> None:
        device = core.state.devices.get(dev_key)
        if device is None or device["kind"] != CONNECTOR:
            raise OpError("not_found", f"no WebSocket device {dev_key!r}", 404)
        if not device["enabled"]:
            raise OpError("invalid", f"device {dev_key} is disabled", 422)
        await core.service("commands").enqueue(
            dev_key, tx.ws_command or "tx", {"port": tx.port, "data": tx.payload.hex()},
            source="tx", reference=tx.reference or None, confirm=tx.confirm, actor="monitor", window=tx.window)


COMMS = Comms(
    communications={
        "device.telemetry": _uplink,
        "device.event": _uplink,
        "device.connected": _join,
        "command.sent": _tx,
        "command.acknowledged": _txconfirm,
    },
    envelopes={"device.telemetry": _uplink_heads, "device.event": _uplink_heads},
    actions=each(_ACTION_RECORDS, _action),
    tx_handlers=(WsTxHandler(),),
)

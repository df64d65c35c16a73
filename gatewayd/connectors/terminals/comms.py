"""Terminal registrations and presence on the monitoring streams (communications and actions)."""

from __future__ import annotations

import json
from datetime import datetime

from ...comm_tables import Comms, each
from ...journal.record import Record, parse_ts
from ..monitor.resiot import COMM_JOIN, COMM_RX, Action, Communication


# -- monitoring ------------------------------------------------------------------------------------
def _dt(record: Record) -> datetime:
    return parse_ts(record.ts)


def _registered_comm(record: Record) -> list[Communication]:
    data = record.data
    body = {"cpusn": data.get("cpusn"), "devinfo": data.get("devinfo") or {}}
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    extra = {"type": "reg", "status": data.get("status"), "cpusn": data.get("cpusn"),
             **{k: v for k, v in (data.get("devinfo") or {}).items() if isinstance(v, (str, int))}}
    return [Communication(comm_type=COMM_JOIN, connector=data["connector"], dev_eui=data["sn"], dt=_dt(record),
                          seq=record.seq, payload=payload, extra=extra)]


def _qrcode_comm(record: Record) -> list[Communication]:
    """A QR code read by a terminal: Payload is the code's text as read."""
    data = record.data
    return [Communication(comm_type=COMM_RX, connector=data["connector"], dev_eui=data["sn"], dt=_dt(record),
                          seq=record.seq, payload=data["code"].encode("utf-8", "replace"),
                          extra={"type": "sendqrcode", "qrcode": data["code"]})]


def _user_enrolled_comm(record: Record) -> list[Communication]:
    """A user enrolled or changed on a terminal (senduser): Payload is the user as JSON, without the
    credential (templates, card numbers and passwords are not kept)."""
    data = record.data
    user = data["user"]
    payload = json.dumps({**user, "backupnum": data.get("backupnum")}, separators=(",", ":"),
                         ensure_ascii=False).encode()
    extra = {"type": "senduser", "enrollid": user["enrollid"], "admin": user.get("admin"),
             "backupnum": data.get("backupnum"), "credential_chars": data.get("credential_chars", 0)}
    if user.get("name") is not None:
        extra["name"] = user["name"]
    return [Communication(comm_type=COMM_RX, connector=data["connector"], dev_eui=data["sn"], dt=_dt(record),
                          seq=record.seq, payload=payload, extra=extra)]


def _users_action(record: Record) -> Action:
    """The terminal's user list changed (a listing, or a command the terminal acknowledged)."""
    data = record.data
    details = {"source": data.get("source", ""), "users": len(data.get("users", ())),
               **{k: data[k] for k in ("replace", "complete", "deleted", "deleted_credentials", "admins_cleared")
                  if data.get(k)}}
    return Action(action_type="terminal_users_updated", actor=f"terminal:{data['sn']}",
                  target=f"terminal:{data['sn']}", details=details, dt=_dt(record), seq=record.seq)


def _access_action(record: Record) -> Action:
    """A door decision sent in a sendlog reply (the terminal's access rule)."""
    data = record.data
    return Action(action_type="terminal_access", actor=f"terminal:{data['sn']}", target=f"terminal:{data['sn']}",
                  details={k: v for k, v in data.items() if k != "sn"}, dt=_dt(record), seq=record.seq)


_ACTION_NAMES = {
    "terminal.added": "terminal_added", "terminal.pending": "terminal_pending",
    "terminal.approved": "terminal_approved", "terminal.rejected": "terminal_rejected",
    "terminal.updated": "terminal_updated", "terminal.deleted": "terminal_deleted",
    "terminal.online": "terminal_online", "terminal.offline": "terminal_offline",
    "terminal.backlog_pulled": "terminal_backlog_pulled",
}


def _unknown_message_action(record: Record) -> Action:
    """A message of a kind gatewayd does not know, streamed as an error on the actions stream."""
    data = record.data
    target = f"terminal:{data['sn']}" if data.get("sn") else data.get("remote", "")
    return Action(action_type="terminal_unknown_message", actor=target or "terminal", target=target,
                  details={"error": data.get("reason", ""), "cmd": data.get("cmd", ""),
                           "connector": data.get("connector", "")}, dt=_dt(record), seq=record.seq)


def _terminal_action(record: Record) -> Action:
    data = record.data
    actor = data.get("actor") or f"terminal:{data['sn']}"
    details = {k: v for k, v in data.items() if k not in ("sn", "actor")}
    return Action(action_type=_ACTION_NAMES[record.type], actor=actor, target=f"terminal:{data['sn']}",
                  details=details, dt=_dt(record), seq=record.seq)


COMMS = Comms(
    communications={
        "terminal.registered": _registered_comm,
        "terminal.qrcode": _qrcode_comm,
        "terminal.user_enrolled": _user_enrolled_comm,
    },
    actions={
        "terminal.unknown_message": _unknown_message_action,
        "terminal.users": _users_action,
        "terminal.access": _access_action,
        **each(_ACTION_NAMES, _terminal_action),
    },
)

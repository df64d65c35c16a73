"""Actions (monitoring section 5) for the records the core itself writes.

ActionType is the record type with "_" for "." (`apikey.created` -> `apikey_created`), as for
every other domain's actions. Actor is who did it ("gatewayd" when the daemon acted on its own,
the source address for failed authentications). Details never carry a hash or a secret: each
mapper copies named fields only.
"""

from __future__ import annotations

import re

from ...comm_tables import Comms
from ...journal.record import Record, parse_ts
from .resiot import Action

SYSTEM = "gatewayd"
# What identify() records for a bad API key is its first 12 characters. Only a well-formed
# "gwk_<key id>" prefix is shown: anything else could be the start of some other secret.
_API_KEY_PREFIX = re.compile(r"gwk_[0-9a-f]{8}")


def make_action(record: Record, actor: str, target: str, details: dict[str, object]) -> Action:
    return Action(action_type=record.type.replace(".", "_"), actor=actor, target=target, details=details,
                  dt=parse_ts(record.ts), seq=record.seq)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def admin_password_set(record: Record) -> Action:
    data = record.data
    generated = bool(data.get("generated"))
    actor = _text(data.get("actor")) or (SYSTEM if generated else "operator")
    return make_action(record, actor, "admin", {"generated": generated})


def apikey_created(record: Record) -> Action:
    data = record.data
    details = {"key_id": _text(data.get("key_id")), "name": _text(data.get("name"))}
    return make_action(record, _text(data.get("actor")) or "operator", details["key_id"], details)


def apikey_revoked(record: Record) -> Action:
    key_id = _text(record.data.get("key_id"))
    return make_action(record, _text(record.data.get("actor")) or "operator", key_id, {"key_id": key_id})


def safe_subject(kind: str, subject: str, user_hash: str = "") -> str:
    """The part of a failed credential's subject that may be shown (never a secret's characters).
    Failed logins name the user by a salted hash (`user#<hash>`): the typed name may be a password."""
    if user_hash:
        return f"user#{user_hash[:16]}"
    if kind == "apikey":
        return subject if _API_KEY_PREFIX.fullmatch(subject) else ""
    # Logins name the user, device tokens the device id: identifiers, not secrets.
    return subject[:64]


def auth_failed(record: Record) -> Action:
    data = record.data
    kind = _text(data.get("kind"))
    source = _text(data.get("source"))
    subject = safe_subject(kind, _text(data.get("subject")), _text(data.get("user_hash")))
    return make_action(record, source, subject, {"kind": kind, "source": source})


def auth_logout(record: Record) -> Action:
    user = _text(record.data.get("user"))
    return make_action(record, user, user, {})


def auth_login(record: Record) -> Action:
    data = record.data
    user = _text(data.get("user"))
    source = _text(data.get("source"))
    return make_action(record, user, user, {"source": source})


def config_reloaded(record: Record) -> Action:
    data = record.data
    return make_action(record, SYSTEM, "configuration", {
        "applied": list(data.get("applied") or []),
        "needs_restart": list(data.get("needs_restart") or []),
    })


def journal_compacted(record: Record) -> Action:
    data = record.data
    return make_action(record, SYSTEM, "journal", {
        "snapshot_seq": data.get("snapshot_seq"),
        "snapshot_bytes": data.get("snapshot_bytes"),
        "segments_deleted": len(data.get("segments_deleted") or []),
    })


def server_started(record: Record) -> Action:
    data = record.data
    return make_action(record, SYSTEM, "server", {
        key: data.get(key) for key in ("version", "pid", "http_port", "udp_port")})


def server_stopping(record: Record) -> Action:
    return make_action(record, SYSTEM, "server", {"pid": record.data.get("pid")})


COMMS = Comms(
    actions={
        "admin.password_set": admin_password_set,
        "apikey.created": apikey_created,
        "apikey.revoked": apikey_revoked,
        "auth.failed": auth_failed,
        "auth.logout": auth_logout,
        "auth.login": auth_login,
        "config.reloaded": config_reloaded,
        "journal.compacted": journal_compacted,
        "server.started": server_started,
        "server.stopping": server_stopping,
    },
)

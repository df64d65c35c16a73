"""Webhooks on /monitor/actions: webhook_added, webhook_removed, webhook_dropped. A URL is shown
without its query and user part (they may hold credentials); secrets and headers never."""

from __future__ import annotations

from urllib.parse import urlsplit

from ...comm_tables import Comms
from ...journal.record import Record
from ..monitor.resiot import Action
from ..monitor.core_actions import SYSTEM, make_action


def shown_url(url: object) -> str:
    if not isinstance(url, str):
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def webhook_added(record: Record) -> Action:
    d = record.data
    return make_action(record, str(d.get("actor") or "operator"), str(d.get("name", "")), {
        "name": d.get("name"), "url": shown_url(d.get("url")), "events": d.get("events"),
        "signed": bool(d.get("secret")), "batch": d.get("batch")})


def webhook_removed(record: Record) -> Action:
    d = record.data
    return make_action(record, str(d.get("actor") or "operator"), str(d.get("name", "")), {"name": d.get("name")})


def webhook_dropped(record: Record) -> Action:
    d = record.data
    keys = ("name", "first_event", "last_event", "count", "first_ts", "error", "tries", "max_age")
    return make_action(record, SYSTEM, str(d.get("name", "")), {k: d.get(k) for k in keys})


COMMS = Comms(
    actions={
        "webhook.added": webhook_added,
        "webhook.removed": webhook_removed,
        "webhook.dropped": webhook_dropped,
    },
)

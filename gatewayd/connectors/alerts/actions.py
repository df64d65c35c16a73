"""Alerts on the monitoring actions stream (/monitor/actions): alert_raised, alert_cleared,
alert_acknowledged. The target is the alert's subject; details name the alert, never more."""

from __future__ import annotations

from ...comm_tables import Comms, each
from ...journal.record import Record
from ..monitor.resiot import Action
from ..monitor.core_actions import SYSTEM, make_action

DETAIL_KEYS = {
    "alert.raised": ("id", "kind", "subject", "name", "since", "rule", "threshold", "details"),
    "alert.cleared": ("id", "kind", "subject", "name", "since", "reason"),
    "alert.acknowledged": ("id", "kind", "subject"),
}


def alert_action(record: Record) -> Action:
    data = record.data
    actor = data.get("actor") if record.type == "alert.acknowledged" else SYSTEM
    details = {key: data.get(key) for key in DETAIL_KEYS[record.type]}
    return make_action(record, str(actor or "operator"), str(data.get("subject", "")), details)


COMMS = Comms(
    actions=each(DETAIL_KEYS, alert_action),
)

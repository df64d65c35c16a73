"""Alert records as northbound events (event `alert`), for webhooks and MQTT (`{prefix}/alert`),
and `record_events`: every northbound event of a record, the subjects' (events.py) and alerts.

    {"seq": 930, "event_id": "930.0", "ts": "...", ["site": ...,] "event": "alert",
     "alert": {"id", "kind", "state": "raised"|"cleared", "subject", "name", "since", ...}, "comm": null}

`raised` carries the rule and threshold that fired and the kind's details; `cleared` the reason.
Pure, like events.py: the same record gives the same body live and from a backlog.
"""

from __future__ import annotations

from datetime import timezone, tzinfo

from ..comm_tables import CommTables
from ..journal.record import Record
from .events import Directory, NoDirectory, NorthboundEvent, events_of, may_have_events

ALERT = "alert"
ALERT_RECORDS = {"alert.raised": "raised", "alert.cleared": "cleared"}
_RAISED_KEYS = ("rule", "threshold", "details")


def alert_events(record: Record, *, site: str | None = None) -> list[NorthboundEvent]:
    state = ALERT_RECORDS.get(record.type)
    if state is None:
        return []
    d = record.data
    alert = {"id": d.get("id"), "kind": d.get("kind"), "state": state, "subject": d.get("subject"),
             "name": d.get("name"), "since": d.get("since")}
    if state == "raised":
        alert.update({key: d.get(key) for key in _RAISED_KEYS})
    else:
        alert["reason"] = d.get("reason")
    body = {"seq": record.seq, "event_id": f"{record.seq}.0", "ts": record.ts}
    if site is not None:
        body["site"] = site
    body.update({"event": ALERT, "alert": alert, "comm": None})
    return [NorthboundEvent(ALERT, str(d.get("id")), ALERT, body)]


_NO_DIRECTORY = NoDirectory()


def has_events(record_type: str, comms: CommTables) -> bool:
    """False for records that never give a northbound event (most of the journal): a quick filter."""
    return record_type in ALERT_RECORDS or may_have_events(record_type, comms)


def record_events(record: Record, directory: Directory = _NO_DIRECTORY, zone: tzinfo = timezone.utc, *,
                  comms: CommTables, site: str | None = None) -> list[NorthboundEvent]:
    """Every northbound event of one record, alerts included, in a fixed order (often none).
    `comms`: the connectors' mappers (core.comms)."""
    if record.type in ALERT_RECORDS:
        return alert_events(record, site=site)
    return events_of(record, directory, zone, comms=comms, site=site)

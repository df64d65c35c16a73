"""What forwarders to other systems (MQTT, webhooks) send: journal records as northbound events."""

from __future__ import annotations

from datetime import timezone, tzinfo

from ..journal.record import Record
from .alerts import alert_events
from .events import Directory, NorthboundEvent, NoDirectory, events_of, may_have_events


def record_events(record: Record, directory: Directory | None = None, zone: tzinfo = timezone.utc,
                  site: str | None = None) -> list[NorthboundEvent]:
    """Every northbound event of a record, alerts included (often none)."""
    if record.type.startswith("alert."):
        return alert_events(record, site=site)
    if not may_have_events(record.type):
        return []
    return events_of(record, directory or NoDirectory(), zone, site=site)

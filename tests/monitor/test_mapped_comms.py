"""The communications the live stream maps are handed to the history store, not mapped twice."""

from __future__ import annotations

from datetime import timezone

from gatewayd.connectors.monitor.streams import MappedComms, stream_kinds
from gatewayd.gateway import comm_tables
from gatewayd.journal.record import Record


def _telemetry(seq: int) -> Record:
    return Record(seq, "2026-12-02T10:00:00.000000Z", "device.telemetry",
                  {"device_id": "dev-1", "name": "one", "connector": "ws", "payload": {"t": seq}})


def test_rendered_communications_are_kept_once_for_the_history_store():
    tables = comm_tables()
    mapped = MappedComms()
    record = _telemetry(7)
    rendered = stream_kinds(tables)["communications"].render(record, timezone.utc, mapped)
    kept = mapped.take(7)
    assert kept and [c for c, _ in rendered] == kept
    assert kept == tables.communications(record)
    assert mapped.take(7) is None  # taken once


def test_the_oldest_go_first_beyond_the_limit():
    mapped = MappedComms()
    for seq in range(MappedComms.LIMIT + 10):
        mapped.keep(seq, [seq])
    assert mapped.take(0) is None and mapped.take(9) is None
    assert mapped.take(10) == [10] and mapped.take(MappedComms.LIMIT + 9) == [MappedComms.LIMIT + 9]

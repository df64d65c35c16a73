"""Operations on the history store: its status, a rebuild, and the communications query."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from ..opcommands import Arg, OpCommand
from ..ops import OpError, operation
from . import queries, retention

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

COMM_LIMIT_DEFAULT = 100
COMM_LIMIT_MAX = 10_000


@operation("history.status")
async def history_status(core) -> dict[str, Any]:
    history = core.history

    def counts(conn) -> dict[str, Any]:
        counted = {"telemetry": "sum(count) FROM telemetry_windows", "telemetry_hourly": "count(*) FROM telemetry_hourly",
                   "punches": "count(*) FROM punches", "communications": "sum(count) FROM communications"}
        rows = {name: conn.execute(f"SELECT {what}").fetchone()[0] or 0 for name, what in counted.items()}
        pending = conn.execute("SELECT value FROM meta WHERE name = 'pending_telemetry'").fetchone()
        rows["telemetry"] += int(pending[0] or 0) if pending else 0  # not regrouped yet
        return {"rows": rows, "bytes": retention.used_bytes(conn)}

    return {"path": str(history.path), "seq": history.position, "journal_seq": core.hub.fanned_seq,
            "ready": history.ready, "commits": history.commits, "rebuilds": history.rebuilds,
            "last_error": history.last_error, **history.read(counts)}


@operation("history.rebuild")
async def history_rebuild(core) -> dict[str, Any]:
    """Build the store again from the journal (as far back as the journal goes)."""
    return await core.history.request_rebuild()


def time_param_us(value: Any, name: str) -> int | None:
    """A query's ISO 8601 time (UTC when it names no zone) as microseconds since the epoch; None when
    absent. A precise 422 otherwise."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise OpError("invalid", f"{name} must be an ISO 8601 time", 422)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return (moment - _EPOCH) // timedelta(microseconds=1)
    except (ValueError, OverflowError):
        raise OpError("invalid", f"{name}: {value[:40]!r} is not an ISO 8601 time", 422) from None


@operation("communications.list")
async def communications_list(core, start: str | None = None, end: str | None = None, device: str | None = None,
                              type: str | None = None, limit: int = COMM_LIMIT_DEFAULT,
                              after: str | None = None) -> dict[str, Any]:
    """Stored communications (the monitoring stream's items) in time order, filtered; paged with
    `after` = the previous page's `next_after`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= COMM_LIMIT_MAX:
        raise OpError("invalid", f"limit must be an integer from 1 to {COMM_LIMIT_MAX}", 422)
    for name, value in (("device", device), ("type", type)):
        if value is not None and (not isinstance(value, str) or len(value) > 128):
            raise OpError("invalid", f"{name} must be a string of at most 128 characters", 422)
    position = None
    if after:
        try:
            ts, seq, item = (int(part) for part in str(after).split("."))
            position = (ts, seq, item)
        except ValueError:
            raise OpError("invalid", "after must be a next_after value", 422) from None
    start_us, end_us = time_param_us(start, "from"), time_param_us(end, "to")
    await core.history.wait_applied()
    items, resume = core.history.read(queries.communications, start_us=start_us, end_us=end_us, device=device,
                                      comm_type=type, limit=limit + 1, after=position,
                                      mapper=core.history.comm_mapper)
    more = len(items) > limit
    items = items[:limit]
    next_after = None
    for entry in items:
        next_after = entry.pop("cursor")
    # A page that read as many records as one query may before filling up goes on from where it stopped.
    return {"items": items, "next_after": next_after if more else resume}


def _rebuilt(result: dict[str, Any]) -> str:
    return f"history store rebuilt up to seq {result['seq']}" + (
        f" ({result['records']} records in {result['seconds']} s)" if "records" in result else "")


# Command-line words (the command line lists them with the other ground-floor commands).
COMMANDS = [
    OpCommand(("history", "rebuild"), "history.rebuild",
              "build the history store again from the journal (as far back as the journal goes)", [], _rebuilt),
    OpCommand(("history", "status"), "history.status", "the history store's position, rows and size", [],
              lambda r: json.dumps(r, indent=2)),
    OpCommand(("history", "communications"), "communications.list", "stored communications, oldest first",
              [Arg("from", "from this ISO time", flag=True, dest="start"),
               Arg("to", "up to this ISO time", flag=True, dest="end"),
               Arg("device", "only this device (id, serial number or DevEUI)", flag=True),
               Arg("type", "only this type (comm_rx, comm_tx, comm_join ...)", flag=True),
               Arg("limit", "at most this many", flag=True, type=int)],
              lambda r: json.dumps(r, indent=2)),
]

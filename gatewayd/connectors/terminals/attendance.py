"""The attendance store: durable, deduplicated punches; queries and CSV export.

Every punch source goes through `ingest`: terminals over HTTP and WebSocket, the XML dialect's
`<attendance>`, a terminal's backlog pulled with `getnewlog`. A punch is stored once per dedup key
(PROTOCOLS.md 3.1) and `ingest` returns only when every punch it was given is durable — including
punches that an earlier, concurrent call stored: a resend that overtakes the original's fsync
waits for it, so an acknowledgement always means "on disk".
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import date, datetime, time as dtime, timedelta, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import trio

from ...comm_tables import Comms
from ...opcommands import Arg, OpCommand
from ...journal.record import Record, parse_ts
from ...journal.writer import JournalUnavailable
from ...ops import OpError, operation
from . import punches as tpunch
from ..monitor.resiot import COMM_RX, Communication
from ...history.queries import StoredPunch, select_punches
from .attendance_state import punch_key
from ...textsafe import csv_cell

log = logging.getLogger("gatewayd.attendance")

LIST_LIMIT_DEFAULT = 1000
LIST_LIMIT_MAX = 100_000
CSV_COLUMNS = ("sn", "enrollid", "time", "timezone", "utc", "terminal_time", "terminal_timezone",
               "mode", "mode_name", "inout", "inout_name", "event", "event_name", "temp",
               "verifymode", "connector", "flags", "id")


def zone(name: str, where: str = "tz") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise OpError("invalid", f"{where}: unknown time zone {name!r}", 422) from None


class AttendanceService:
    def __init__(self, core):
        self.core = core
        self._inflight: dict[int, trio.Event] = {}  # seq of an attendance record -> set once settled

    @property
    def part(self):
        return self.core.state.attendance

    def terminal_status(self, source: str) -> str | None:
        terminals = self.core.state.parts.get("terminals")
        terminal = terminals.get(source) if terminals is not None else None
        return terminal["status"] if terminal is not None else None

    def zone_name_for(self, source: str, tz: str | None = None) -> str:
        if tz:
            return tz
        terminals = self.core.state.parts.get("terminals")
        terminal = terminals.get(source) if terminals is not None else None
        if terminal is not None and terminal.get("tz"):
            return terminal["tz"]
        return self.core.settings.terminals.timezone

    @staticmethod
    def _wire(punch: tpunch.Punch, key_time: str, tzinfo: ZoneInfo, now: datetime, skew_limit: float) -> dict[str, Any]:
        """The record form of a punch: its raw fields plus the UTC instant (`now` is naive UTC)."""
        item = tpunch.punch_to_record(punch)
        try:
            instant = punch.local_time - tzinfo.utcoffset(punch.local_time)
        except OverflowError:  # year 1 or 9999 shifted past the calendar's end: keep the wall clock
            instant = punch.local_time
        item["utc"] = instant.isoformat() + "Z"
        if key_time != punch.time:
            item["key_time"] = key_time
        if abs((instant - now).total_seconds()) > skew_limit:
            item["skew"] = True
        return item

    async def ingest(self, source: str, punches: list[tpunch.Punch], *, connector: str, tz: str | None = None,
                     meta: dict[str, Any] | None = None) -> int:
        """Store `punches` of `source` (a terminal's sn or a device id) durably, each at most once.

        Returns how many were new. Raises JournalUnavailable (retryable) when they cannot be made
        durable. A terminal that is pending at that moment gets them kept aside; a rejected one gets
        nothing stored."""
        writer = self.core.writer
        if writer.pending_bytes > writer.max_pending_bytes:
            with trio.move_on_after(self.core.settings.journal.durable_timeout):
                await writer.wait_for_space()
            if writer.pending_bytes > writer.max_pending_bytes:
                raise JournalUnavailable("the journal is too far behind")
        # From here to the publish nothing awaits: the status and dedup decisions and the state
        # change are one step.
        status = self.terminal_status(source)
        if status == "rejected":
            return 0
        held = status == "pending"
        tz_name = self.zone_name_for(source, tz)
        try:
            tzinfo = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("attendance: unknown time zone %r for %s; using UTC", tz_name, source)
            tz_name, tzinfo = "UTC", ZoneInfo("UTC")
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        skew_limit = self.core.settings.terminals.clock_skew_hours * 3600
        part = self.part
        candidates: list[tuple[tpunch.Punch, str, int | None, tuple[int, str, int, int]]] = []
        seen: set[str] = set()
        unknown: list[tuple[int, str, int, int]] = []
        for punch in punches:
            _, enrollid, key_time, inout, event = tpunch.dedup_key(source, punch)
            key = punch_key(source, enrollid, key_time, inout, event)
            if key in seen:
                continue
            seen.add(key)
            # Not yet in the history store: the model knows it; older: the store does (one synchronous,
            # indexed read for the whole request, so that the decision and the publish stay one step).
            stored_seq = part.recent_seq(key)
            store_key = (enrollid, key_time, inout, event)
            if stored_seq is None:
                unknown.append(store_key)
            candidates.append((punch, key_time, stored_seq, store_key))
        stored = self.core.history.stored_punches(source, unknown)
        fresh: list[dict[str, Any]] = []
        waits: set[int] = set()
        for punch, key_time, stored_seq, store_key in candidates:
            if stored_seq is None:
                found = stored.get(store_key)
                if found is not None and not (found[1] and part.dropped_after(source, found[0])):
                    stored_seq = found[0]
            if stored_seq is None:
                fresh.append(self._wire(punch, key_time, tzinfo, now, skew_limit))
            elif stored_seq > writer.durable_seq:
                waits.add(stored_seq)
        if fresh:
            data = {"source": source, "connector": connector, "tz": tz_name, "held": held,
                    "punches": fresh, **(meta or {})}
            await self._publish(data)
        for seq in sorted(waits):
            await self._wait_durable(seq)
        return len(fresh)

    async def _publish(self, data: dict[str, Any]) -> list[Record]:
        seq = self.core.hub.next_seq
        settled = self._inflight[seq] = trio.Event()
        try:
            return await self.core.hub.publish_many([("attendance.punches", data)])
        finally:
            settled.set()
            del self._inflight[seq]

    async def _wait_durable(self, seq: int) -> None:
        """Wait until an attendance record published by a concurrent ingest is on disk."""
        writer = self.core.writer
        settled = self._inflight.get(seq)
        if settled is not None:
            with trio.move_on_after(self.core.settings.journal.durable_timeout):
                await settled.wait()
        if writer.durable_seq < seq:
            raise JournalUnavailable("an earlier copy of these punches is not durable yet")

    # -- reading ----------------------------------------------------------------------------------
    def select(self, **filters: Any) -> Iterable[StoredPunch]:
        """Stored punches in id order from the history store (`queries.select_punches` filters). What
        the store has: `await core.history.wait_applied()` first to include every durable punch."""
        return self.core.history.read(select_punches, **filters)

    def code_names(self, source: str) -> dict[str, dict[str, str]]:
        """Names for mode / inout / event codes of the source's model, from `terminals.codes`."""
        tables = self.core.settings.terminals.codes or {}
        terminals = self.core.state.parts.get("terminals")
        terminal = terminals.get(source) if terminals is not None else None
        model = terminal.get("model") if terminal else None
        names: dict[str, dict[str, str]] = {kind: {str(k): v for k, v in table.items()}
                                           for kind, table in tpunch.DEFAULT_CODE_NAMES.items()}
        for table in (tables.get("default"), tables.get(model) if model else None):
            if not isinstance(table, dict):
                continue
            for kind in names:
                codes = table.get(kind)
                if isinstance(codes, dict):
                    names[kind].update({str(k): str(v) for k, v in codes.items()})
        return names

    def to_public(self, punch: StoredPunch, export_zone: ZoneInfo | None = None,
                  names: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
        names = names or self.code_names(punch.source)
        instant = datetime.fromtimestamp(punch.utc_ts, timezone.utc)
        shown_zone = export_zone or ZoneInfo(punch.tz)
        try:
            shown = instant.astimezone(shown_zone)
        except OverflowError:  # a reset clock's year 9999 cannot be shown east of UTC
            shown_zone, shown = ZoneInfo("UTC"), instant
        flags = ["clock_skew"] if punch.skew else []
        return {
            "id": punch.id, "sn": punch.source, "connector": punch.connector, "enrollid": punch.enrollid,
            "time": shown.strftime("%Y-%m-%d %H:%M:%S"), "timezone": shown_zone.key, "utc": punch.utc,
            "terminal_time": punch.time, "terminal_timezone": punch.tz,
            "mode": punch.mode, "mode_name": names["mode"].get(str(punch.mode), ""),
            "inout": punch.inout, "inout_name": names["inout"].get(str(punch.inout), ""),
            "event": punch.event, "event_name": names["event"].get(str(punch.event), ""),
            "temp": punch.temp, "verifymode": punch.verifymode, "image_chars": punch.image_chars,
            "flags": flags, "received": punch.received, "seq": punch.seq,
        }

    def csv_lines(self, punches: Iterable[StoredPunch], export_zone: ZoneInfo | None) -> Iterable[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        names_by_source: dict[str, dict] = {}
        for punch in punches:
            names = names_by_source.get(punch.source)
            if names is None:
                names = names_by_source[punch.source] = self.code_names(punch.source)
            row = self.to_public(punch, export_zone, names)
            row["flags"] = ";".join(row["flags"])
            writer.writerow(["" if row[c] is None else csv_cell(row[c]) for c in CSV_COLUMNS])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()


# -- time range arguments -------------------------------------------------------------------------
def parse_bound(text: str | None, zone_info: ZoneInfo, *, end: bool, where: str) -> tuple[float | None, bool]:
    """'2026-06-12' or an ISO 8601 time (the zone of `zone_info` when it has none) -> (epoch, inclusive).
    A bare date as the end bound means up to the end of that day."""
    if text is None or text == "":
        return None, True
    if not isinstance(text, str) or len(text) > 64:
        raise OpError("invalid", f"{where} must be a date or an ISO 8601 time", 422)
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end:
                if day == date.max:
                    return None, True
                day += timedelta(days=1)
            return datetime.combine(day, dtime(0), zone_info).timestamp(), not end
        moment = datetime.fromisoformat(value.replace("z", "Z"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone_info)
        return moment.timestamp(), True
    except (ValueError, OverflowError):
        raise OpError("invalid", f"{where}: {value!r} is neither YYYY-MM-DD nor an ISO 8601 time", 422) from None


async def _query(core, start, end, sn, enrollid, tz, after=0, limit=None, conn=None, newest_first=False):
    export_zone = zone(tz) if tz else None
    bound_zone = export_zone or ZoneInfo("UTC")
    start_ts, _ = parse_bound(start, bound_zone, end=False, where="from")
    end_ts, inclusive = parse_bound(end, bound_zone, end=True, where="to")
    if start_ts is not None and end_ts is not None and (start_ts > end_ts or (start_ts == end_ts and not inclusive)):
        raise OpError("invalid", f"from {start} is after to {end}: choose a From date on or before the To date",
                      422)
    if enrollid is not None:
        try:
            enrollid = int(enrollid)
        except (TypeError, ValueError):
            raise OpError("invalid", f"enrollid must be an integer, got {enrollid!r}", 422) from None
    if sn is not None and not isinstance(sn, str):
        raise OpError("invalid", "sn must be a string", 422)
    service = core.service("attendance")
    await core.history.wait_applied()
    filters = dict(start=start_ts, end=end_ts, end_inclusive=inclusive, sn=sn, enrollid=enrollid, after=after,
                   limit=limit, newest_first=newest_first)
    found = select_punches(conn, **filters) if conn is not None else service.select(**filters)
    return service, export_zone, found


async def csv_export(core, start=None, end=None, sn=None, enrollid=None, tz=None) -> Iterable[str]:
    """The CSV export as chunks of text; arguments are checked before the first chunk. It reads on a
    connection of its own, one consistent view of the store however long the download takes."""
    conn = core.history.open_reader()
    try:
        service, export_zone, found = await _query(core, start, end, sn, enrollid, tz, conn=conn)
    except BaseException:
        conn.close()
        raise

    def chunks() -> Iterable[str]:
        try:
            conn.execute("BEGIN")  # one snapshot of the store for the whole export
            yield from service.csv_lines(found, export_zone)
        finally:
            conn.close()

    return chunks()


@operation("attendance.list")
async def attendance_list(core, start: str | None = None, end: str | None = None, sn: str | None = None,
                          enrollid: int | None = None, tz: str | None = None, limit: int = LIST_LIMIT_DEFAULT,
                          after: int = 0, newest_first: bool = False) -> dict[str, Any]:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= LIST_LIMIT_MAX:
        raise OpError("invalid", f"limit must be an integer from 1 to {LIST_LIMIT_MAX}", 422)
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise OpError("invalid", "after must be a punch id (an integer >= 0)", 422)
    if not isinstance(newest_first, bool) or (newest_first and after):
        raise OpError("invalid", "newest_first must be true or false, and cannot go with after", 422)
    service, export_zone, found = await _query(core, start, end, sn, enrollid, tz, after, limit + 1,
                                               newest_first=newest_first)
    rows = []
    for punch in found:
        if len(rows) == limit:
            return {"punches": rows, "next_after": rows[-1]["id"]}
        rows.append(service.to_public(punch, export_zone))
    return {"punches": rows, "next_after": None}


@operation("attendance.export")
async def attendance_export(core, start: str | None = None, end: str | None = None, sn: str | None = None,
                            enrollid: int | None = None, tz: str | None = None, format: str = "csv") -> Any:
    if format not in ("csv", "json"):
        raise OpError("invalid", "format must be csv or json", 422)
    service, export_zone, found = await _query(core, start, end, sn, enrollid, tz)
    if format == "json":
        return [service.to_public(p, export_zone) for p in found]
    return "".join(service.csv_lines(found, export_zone))


# -- monitoring ----------------------------------------------------------------------------------
def _punches_comm(record: Record) -> list[Communication]:
    data = record.data
    records = [{k: v for k, v in p.items() if k not in ("image", "key_time")} for p in data["punches"]]
    payload = json.dumps({"record": records}, separators=(",", ":"), ensure_ascii=False).encode()
    extra = {"type": data.get("cmd", "attendance"), "count": len(records), "held": bool(data.get("held")),
             "tz": data["tz"]}
    for key in ("logindex", "sent_count"):
        if data.get(key) is not None:
            extra[key] = data[key]
    return [Communication(comm_type=COMM_RX, connector=data["connector"], dev_eui=data["source"],
                          dt=parse_ts(record.ts), seq=record.seq, payload=payload, extra=extra)]


def _print_export(result: Any) -> str:
    return result.rstrip("\r\n") if isinstance(result, str) else json.dumps(result, indent=2)


COMMANDS = [
    OpCommand(("attendance", "export"), "attendance.export", "export attendance punches (CSV or JSON)",
              [Arg("from", "from this date or ISO time (inclusive)", flag=True, dest="start"),
               Arg("to", "up to this date (whole day) or ISO time", flag=True, dest="end"),
               Arg("tz", "time zone for the time column and for bounds without a zone", flag=True),
               Arg("sn", "only this terminal (or device id)", flag=True),
               Arg("enrollid", "only this person", flag=True, type=int),
               Arg("format", "csv (default) or json", flag=True)],
              _print_export),
]


COMMS = Comms(
    communications={
        "attendance.punches": _punches_comm,
    },
)

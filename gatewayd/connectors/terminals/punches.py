"""Attendance punches as terminals (and devices) send them: parsing, the journal form, the dedup key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from .fields import MAX_TIME_TEXT_CHARS, describe, invalid, parse_local_time, to_float, to_int, to_text


MAX_RECORDS_PER_BATCH = 1000
MAX_IMAGE_CHARS = 512 * 1024  # base64 punch photo
MAX_ENROLLID = 4_294_967_295
MAX_CODE = 2**31 - 1  # mode, inout, event, verifymode, count, logindex
INOUT: Mapping[int, str] = MappingProxyType({0: "in", 1: "out"})
# Names shown for punch codes unless `terminals.codes` names them otherwise (per model or "default").
# The meanings most firmware of this family uses; other firmware differs, hence the setting.
MODE: Mapping[int, str] = MappingProxyType({1: "fingerprint", 2: "password", 3: "card", 8: "face"})
EVENT: Mapping[int, str] = MappingProxyType({0: "normal"})
DEFAULT_CODE_NAMES: Mapping[str, Mapping[int, str]] = MappingProxyType({"mode": MODE, "inout": INOUT, "event": EVENT})
DOOR_EVENT_ENROLLID = 0  # a record with enrollid 0 is a door / system event, not a person


@dataclass(frozen=True, slots=True)
class Punch:
    """One attendance / access record. `time` is kept as received (stripped); `local_time` is the
    same instant read as the terminal's naive wall clock."""

    enrollid: int
    time: str
    local_time: datetime
    mode: int = 0
    inout: int = 0
    event: int = 0
    temp: float | None = None
    verifymode: int | None = None
    image: str | None = None


def parse_punch(record: object, where: str = "record") -> Punch:
    """One record of `sendlog` / `getnewlog` / `getalllog` (or the device dialects' attendance).

    `enrollid` and `time` are required; `mode`, `inout`, `event` default to 0 (the seed's own
    example omits `event`). `temp` above 100 is in hundredths of a degree. An empty `image` is
    treated as absent."""
    if not isinstance(record, Mapping):
        raise invalid(f"{where} must be an object, got {describe(record)}")
    for name in ("enrollid", "time"):
        if record.get(name) is None:
            raise invalid(f"{where} has no '{name}'")
    enrollid = to_int(record["enrollid"], f"{where}.enrollid", 0, MAX_ENROLLID)
    time_text = to_text(record["time"], f"{where}.time", MAX_TIME_TEXT_CHARS)
    local_time = parse_local_time(time_text, f"{where}.time")

    def code(name: str, default: int | None) -> int | None:
        value = record.get(name)
        return default if value is None else to_int(value, f"{where}.{name}", 0, MAX_CODE)

    temp = None
    if record.get("temp") is not None:
        temp = to_float(record["temp"], f"{where}.temp")
        if temp > 100:
            temp = temp / 100
    image = None
    if record.get("image") is not None:
        image = to_text(record["image"], f"{where}.image", MAX_IMAGE_CHARS) or None
    return Punch(
        enrollid=enrollid,
        time=time_text,
        local_time=local_time,
        mode=code("mode", 0),
        inout=code("inout", 0),
        event=code("event", 0),
        temp=temp,
        verifymode=code("verifymode", None),
        image=image,
    )


def punch_to_record(punch: Punch) -> dict:
    """The wire form of a punch (optional fields only when set)."""
    record: dict = {
        "enrollid": punch.enrollid,
        "time": punch.time,
        "mode": punch.mode,
        "inout": punch.inout,
        "event": punch.event,
    }
    for name in ("temp", "verifymode", "image"):
        value = getattr(punch, name)
        if value is not None:
            record[name] = value
    return record


def dedup_key(sn: str, punch: Punch) -> tuple[str, int, str, int, int]:
    """(sn, enrollid, time, inout, event) with the time normalised, so a resend that writes the
    same instant as '...T09:15:30' instead of '... 09:15:30' is still the same punch."""
    return (sn, punch.enrollid, punch.local_time.isoformat(sep=" "), punch.inout, punch.event)

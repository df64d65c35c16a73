"""ZKTeco PUSH ("ADMS", iclock) wire format: query strings, upload bodies, replies, command lines.

Pure and synchronous. The terminal starts every exchange over plain HTTP (PROTOCOLS.md 9):
`GET /iclock/cdata?options=all` (handshake -> `build_options`), `POST /iclock/cdata?table=..`
(uploads -> `parse_attlog`, `parse_operlog`, `parse_options`), `GET /iclock/getrequest`
(-> `build_commands`), `POST /iclock/devicecmd` (-> `parse_devicecmd`).

Bodies are rows separated by LF or CRLF. A row that does not parse becomes a `RowError` naming its
line and what is wrong; the good rows of the same body are kept. Whole-request problems (no SN, a
body too large) raise `ProtocolError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from .. import codec as tp
from .. import command_codec as tc
from .. import fields as tf
from .. import punches as tpunch
from ....errors import ProtocolError

MAX_LINE_BYTES = 8192          # one row; template rows (FP/FACE/BIODATA) are the longest
MAX_ERRORS_KEPT = 20           # row errors described in a reply; the rest are only counted
MAX_INFO_KEYS = 128            # device options / INFO keys kept
MAX_INFO_KEY_CHARS = 64
MAX_INFO_VALUE_CHARS = 256
MAX_STAMP_CHARS = 32
MAX_RAW_LINE_CHARS = 2048
MAX_COMMANDS_PER_POLL = 16
DEFAULT_ENCODING = "gb18030"   # a superset of GBK, what non-UTF-8 ZKTeco firmware writes

# Reply fields of the handshake that are the same for every terminal.
ERROR_DELAY = 60      # seconds before a terminal retries after a failed request
POLL_DELAY = 10       # seconds between getrequest polls (the PUSH `Delay`)
TRANS_TIMES = "00:00;14:05"
TRANS_INTERVAL = 1    # minutes between checks for new data
TRANS_FLAG = "TransData AttLog\tOpLog\tEnrollUser\tChgUser"  # no photos: they are not stored

# table= value -> the stamp names a handshake reply carries for it (new name, old name).
STAMPED_TABLES: Mapping[str, tuple[str, str]] = {
    "ATTLOG": ("ATTLOGStamp", "Stamp"),
    "OPERLOG": ("OPERLOGStamp", "OpStamp"),
    "ATTPHOTO": ("ATTPHOTOStamp", "PhotoStamp"),
}

# What the devicecmd Return codes mean (PUSH SDK).
RETURN_CODES: Mapping[int, str] = {
    0: "ok", -1: "unsupported or no data", -2: "file error", -3: "out of memory",
    -1002: "syntax error", -1003: "data error", -1004: "table not supported",
}

_SN = re.compile(r"[0-9A-Za-z._:-]{1,%d}" % tp.MAX_SN_CHARS, re.ASCII)
_STAMP = re.compile(r"[0-9A-Za-z]{0,%d}" % MAX_STAMP_CHARS, re.ASCII)
_TABLE = re.compile(r"[A-Za-z_]{1,32}", re.ASCII)
_INFO_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,%d}" % (MAX_INFO_KEY_CHARS - 1), re.ASCII)
_PIN = re.compile(r"\d{1,10}", re.ASCII)
_CODE = re.compile(r"-?\d{1,9}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_BREAKS_LINE = re.compile(r"[\t\r\n]")


def _invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid", message)


# --------------------------------------------------------------------------------------------
# Query strings


@dataclass(frozen=True, slots=True)
class PushQuery:
    """What the query string of an /iclock request says. `table` is upper case or None."""

    sn: str
    table: str | None = None
    stamp: str | None = None
    options: str | None = None
    pushver: str | None = None
    language: str | None = None


def parse_query(args: Mapping[str, str]) -> PushQuery:
    """`SN` (any case of the key) is required: 1-64 of [0-9A-Za-z._:-]."""
    lowered = {str(k).lower(): v for k, v in args.items()}
    sn = (lowered.get("sn") or "").strip()
    if not sn:
        raise ProtocolError("missing_field", "the query has no SN")
    if not _SN.fullmatch(sn):
        raise _invalid(f"SN must be 1 to {tp.MAX_SN_CHARS} letters, digits or ._:-, got {tf.describe(sn)}")
    table = lowered.get("table")
    if table is not None:
        table = table.strip()
        if not _TABLE.fullmatch(table):
            raise _invalid(f"table must be a table name such as ATTLOG, got {tf.describe(table)}")
        table = table.upper()
    stamp = None
    for key in ("stamp", "attlogstamp", "opstamp", "operlogstamp", "photostamp", "attphotostamp"):
        if lowered.get(key) is not None:
            stamp = lowered[key].strip()
            if not _STAMP.fullmatch(stamp):
                raise _invalid(f"{key} must be up to {MAX_STAMP_CHARS} letters or digits, got {tf.describe(stamp)}")
            break
    return PushQuery(sn=sn, table=table, stamp=stamp or None, options=_short(lowered.get("options")),
                     pushver=_short(lowered.get("pushver")), language=_short(lowered.get("language")))


def _short(value: str | None) -> str | None:
    if value is None:
        return None
    text = _CONTROL.sub("", value.strip())[:MAX_INFO_VALUE_CHARS]
    return text or None


# --------------------------------------------------------------------------------------------
# Bodies


@dataclass(frozen=True, slots=True)
class RowError:
    line: int        # 1-based line number in the body
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(slots=True)
class Rows:
    """Counts common to every upload: `rows` non-empty lines seen, `errors` the first
    MAX_ERRORS_KEPT problems, `bad` how many rows were refused in all."""

    rows: int = 0
    bad: int = 0
    errors: list[RowError] = field(default_factory=list)

    def refuse(self, line: int, message: str) -> None:
        self.bad += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(RowError(line, message))

    @property
    def accepted(self) -> int:
        return self.rows - self.bad

    def each(self, body: bytes):
        """(line number, bytes) of the body's rows, counted; a row over MAX_LINE_BYTES is refused here."""
        for number, raw in split_lines(body):
            self.rows += 1
            if len(raw) > MAX_LINE_BYTES:
                self.refuse(number, f"the row is {len(raw)} bytes long, the limit is {MAX_LINE_BYTES}")
            else:
                yield number, raw


def split_lines(body: bytes) -> list[tuple[int, bytes]]:
    """(line number, bytes) of every non-empty line; CR before LF dropped, a UTF-8 BOM ignored."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    out = []
    for number, line in enumerate(body.split(b"\n"), 1):
        line = line.rstrip(b"\r")
        if line.strip():
            out.append((number, line))
    return out


def decode_line(raw: bytes, fallback: str = DEFAULT_ENCODING) -> str:
    """UTF-8 first, then the terminal's fallback encoding, then UTF-8 with U+FFFD: never fails."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode(fallback)
    except (UnicodeDecodeError, LookupError):
        return raw.decode("utf-8", "replace")


def clean_text(text: str, limit: int) -> str:
    """Control characters removed, surrounding spaces stripped, at most `limit` characters."""
    return _CONTROL.sub("", text).strip()[:limit]


def parse_pin(text: str, where: str = "PIN") -> int:
    """A numeric PIN (what the store keys punches by): up to 10 digits, at most 4294967295."""
    if text.isascii() and text.isdigit() and len(text) < 10:
        return int(text)
    text = text.strip()
    if not _PIN.fullmatch(text):
        raise _invalid(f"{where} must be a number of up to 10 digits, got {tf.describe(text)}")
    pin = int(text)
    if pin > tpunch.MAX_ENROLLID:
        raise _invalid(f"{where} must be at most {tpunch.MAX_ENROLLID}, got {pin}")
    return pin


def _code(text: str, where: str) -> int:
    if text.isascii() and text.isdigit() and len(text) < 10:  # the usual case, checked cheaply
        return int(text)
    text = text.strip()
    if not text:
        return 0
    if not _CODE.fullmatch(text) or int(text) < 0:
        raise _invalid(f"{where} must be a small non-negative integer, got {tf.describe(text)}")
    return int(text)


@dataclass(slots=True)
class AttlogUpload(Rows):
    punches: list[tpunch.Punch] = field(default_factory=list)


def parse_attlog(body: bytes) -> AttlogUpload:
    """ATTLOG rows: PIN, local time, status, verify, workcode, reserved... separated by TABs.

    status becomes the punch's `inout` (0 in, 1 out, 2-5 breaks and overtime), verify its `mode`;
    the workcode and reserved fields are not kept."""
    upload = AttlogUpload()
    for number, raw in upload.each(body):
        try:
            upload.punches.append(_attlog_row(raw.decode("utf-8", "replace")))
        except ProtocolError as exc:
            upload.refuse(number, exc.message)
    return upload


def _local_time(text: str) -> datetime:
    """'YYYY-MM-DD HH:MM:SS' read by the C parser when it has exactly that shape, else by the
    terminals' general (slower, more lenient) rule."""
    if len(text) == 19 and text[4] == "-" and text[7] == "-" and text[10] == " " and text[13] == ":" \
            and text[16] == ":" and text.isascii():
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # the general rule names what is wrong
    return tf.parse_local_time(text, "time")


def _attlog_row(line: str) -> tpunch.Punch:
    fields = line.split("\t")
    if len(fields) < 2:
        raise _invalid(f"a row needs at least PIN and time separated by a TAB, got {tf.describe(line)}")
    pin = parse_pin(fields[0])
    time_text = fields[1].strip()
    local_time = _local_time(time_text)
    status = _code(fields[2], "status") if len(fields) > 2 else 0
    verify = _code(fields[3], "verify") if len(fields) > 3 else 0
    return tpunch.Punch(enrollid=pin, time=time_text, local_time=local_time, mode=verify, inout=status, event=0)


@dataclass(frozen=True, slots=True)
class PushUser:
    """A user as a terminal reports it. The password is never kept, only whether there is one."""

    pin: int
    name: str = ""
    pri: int = 0
    card: str = ""
    group: str = ""
    has_password: bool = False

    def as_dict(self) -> dict:
        return {"enrollid": self.pin, "name": self.name, "pri": self.pri, "card": self.card, "group": self.group,
                "has_password": self.has_password}


@dataclass(slots=True)
class OperlogUpload(Rows):
    users: list[PushUser] = field(default_factory=list)
    oplogs: int = 0        # operation log rows (counted, not kept)
    templates: int = 0     # fingerprint / face / palm / photo rows (counted, not kept)


_TEMPLATE_KINDS = ("FP", "FACE", "BIODATA", "BIOPHOTO", "USERPIC", "FVEIN", "UNIPHOTO")


def parse_operlog(body: bytes, fallback: str = DEFAULT_ENCODING) -> OperlogUpload:
    """OPERLOG / USERINFO / BIODATA rows: `USER PIN=..\\tName=..` (the prefix may be missing in
    USERINFO), `OPLOG ...`, template rows `FP PIN=..`, `FACE PIN=..`, `BIODATA Pin=..`."""
    upload = OperlogUpload()
    for number, raw in upload.each(body):
        line = decode_line(raw, fallback)
        kind, _, rest = line.partition(" ")
        kind = kind.upper()
        try:
            if kind == "USER":
                upload.users.append(_user(rest))
            elif kind == "OPLOG":
                upload.oplogs += 1
            elif kind in _TEMPLATE_KINDS:
                upload.templates += 1
            elif kind.startswith("PIN="):
                upload.users.append(_user(line))
            else:
                raise _invalid(f"unknown row kind {tf.describe(kind)}; expected USER, OPLOG or a template row")
        except ProtocolError as exc:
            upload.refuse(number, exc.message)
    return upload


def key_values(text: str, sep: str = "\t") -> dict[str, str]:
    """`Key=value` pairs, keys lower-cased without a leading '~'; the last of a repeated key wins."""
    out: dict[str, str] = {}
    for item in text.split(sep):
        key, eq, value = item.partition("=")
        if eq:
            out[key.strip().lstrip("~").lower()] = value
    return out


def _user(text: str) -> PushUser:
    values = key_values(text)
    if "pin" not in values:
        raise _invalid("a USER row has no PIN=")
    pri = values.get("pri", "").strip()
    return PushUser(pin=parse_pin(values["pin"]), name=clean_text(values.get("name", ""), tc.MAX_USER_NAME_CHARS),
                    pri=_code(pri, "Pri") if pri else 0, card=clean_text(values.get("card", ""), 32),
                    group=clean_text(values.get("grp", ""), 16), has_password=bool(values.get("passwd", "").strip()))


def parse_options(body: bytes, fallback: str = DEFAULT_ENCODING) -> dict[str, str]:
    """Device information: `key=value` per line, or several per line separated by commas
    (`~DeviceName=..,MAC=..`). A comma piece without '=' continues the previous value. Keys as
    sent without a leading '~', bounded in number and size."""
    info: dict[str, str] = {}
    for _, raw in split_lines(body):
        _options_line(decode_line(raw, fallback), info)
    return info


def _options_line(line: str, info: dict[str, str]) -> None:
    last = None
    for piece in line.split(","):
        key, eq, value = piece.partition("=")
        key = clean_text(key, 256).lstrip("~")
        if eq and _INFO_KEY.fullmatch(key):
            if key not in info and len(info) >= MAX_INFO_KEYS:
                last = None
                continue
            info[key] = clean_text(value, MAX_INFO_VALUE_CHARS)
            last = key
        elif last is not None:
            info[last] = clean_text(f"{info[last]},{piece}", MAX_INFO_VALUE_CHARS)


# Device information keys -> the registry's devinfo names (shown like a cmd/ret terminal's).
DEVINFO_NAMES: Mapping[str, str] = {
    "DeviceName": "modelname", "FWVersion": "firmware", "MAC": "mac", "UserCount": "useduser",
    "FPCount": "usedfp", "TransactionCount": "usedlog", "FaceCount": "usedface", "IPAddress": "ip",
    "PushVersion": "pushver", "Platform": "platform",
}


def devinfo_from_options(info: Mapping[str, str]) -> dict:
    out: dict = {}
    for key, name in DEVINFO_NAMES.items():
        value = info.get(key)
        if value:
            out[name] = int(value) if value.isdigit() and name.startswith("used") else value
    return out


@dataclass(frozen=True, slots=True)
class CommandResult:
    """One `ID=..&Return=..&CMD=..` line of a devicecmd body; `info` holds `key=value` lines that
    followed it (what INFO answers)."""

    id: str
    code: int | None
    cmd: str
    info: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.code is not None and self.code >= 0

    def describe(self) -> str:
        if self.code is None:
            return "the terminal sent no Return code"
        meaning = RETURN_CODES.get(self.code, "error" if self.code < 0 else "ok")
        return f"Return={self.code} ({meaning})"


def parse_devicecmd(body: bytes, fallback: str = DEFAULT_ENCODING) -> tuple[list[CommandResult], Rows]:
    results: list[CommandResult] = []
    rows = Rows()
    for number, raw in rows.each(body):
        line = decode_line(raw, fallback)
        values = key_values(line, "&")
        if "id" in values:
            result = _command_result(values, number, rows)
            if result is not None:
                results.append(result)
        elif "=" in line and results:
            _options_line(line, results[-1].info)
        else:
            rows.refuse(number, f"expected ID=<id>&Return=<code>&CMD=<name>, got {tf.describe(line)}")
    return results, rows


def _command_result(values: dict[str, str], number: int, rows: Rows) -> CommandResult | None:
    command_id = values["id"].strip()
    if not command_id or len(command_id) > 32:
        rows.refuse(number, f"ID must be 1 to 32 characters, got {tf.describe(command_id)}")
        return None
    text = values.get("return", "").strip()
    if text and not _CODE.fullmatch(text):
        rows.refuse(number, f"Return must be an integer, got {tf.describe(text)}")
        return None
    return CommandResult(command_id, int(text) if text else None, clean_text(values.get("cmd", ""), 64), {})


# --------------------------------------------------------------------------------------------
# Replies


def uploaded(count: int, errors: Rows | None = None) -> str:
    """`OK: <n>`, and when rows were refused a second line naming them (terminals read the first)."""
    text = f"OK: {count}"
    if errors is not None and errors.bad:
        text += f"\nREFUSED: {errors.bad} rows; " + "; ".join(str(e) for e in errors.errors)
    return text


def timezone_value(tz: ZoneInfo, now_utc: datetime) -> str:
    """The `TimeZone` option: whole hours as hours (`1`, `-5`); other offsets in minutes (`330`),
    which firmware reading minutes takes as such and firmware reading hours cannot express."""
    offset = now_utc.astimezone(tz).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    return str(minutes // 60) if minutes % 60 == 0 else str(minutes)


def build_options(sn: str, stamps: Mapping[str, str], timezone: str, server_version: str) -> str:
    """The handshake reply. `stamps` maps a table (ATTLOG, OPERLOG, ATTPHOTO) to the last stamp
    stored; a missing one is 0 (the terminal sends everything, which dedup makes harmless)."""
    lines = [f"GET OPTION FROM: {sn}"]
    for table, names in STAMPED_TABLES.items():
        stamp = stamps.get(table) or "0"
        lines.extend(f"{name}={stamp}" for name in names)
    lines += [f"ErrorDelay={ERROR_DELAY}", f"Delay={POLL_DELAY}", f"TransTimes={TRANS_TIMES}",
              f"TransInterval={TRANS_INTERVAL}", f"TransFlag={TRANS_FLAG}", f"TimeZone={timezone}",
              "Realtime=1", "Encrypt=0", f"ServerVer={server_version}"]
    return "\n".join(lines) + "\n"


def build_commands(commands: list[tuple[int, str]]) -> str:
    """`OK` when there is nothing to do, else `C:<id>:<line>` per command."""
    if not commands:
        return "OK"
    return "".join(f"C:{command_id}:{line}\n" for command_id, line in commands)

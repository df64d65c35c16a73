"""ResIOT-style monitoring streams: communication envelopes, actions and stream filters (TX requests
are read in tx_request.py).

Pure data in, pure data out: the monitoring transport feeds frames in and sends what comes out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Collection, Mapping

import orjson

COMM_GWALIVE = "comm_gwalive"
COMM_JOIN = "comm_join"
COMM_GWRX = "comm_gwrx"
COMM_GWTX = "comm_gwtx"
COMM_RX = "comm_rx"
COMM_TX = "comm_tx"
COMM_TXINFO = "comm_txinfo"
COMM_TXSENDACK = "comm_txsendack"
COMM_TXSENDCONFIRM = "comm_txsendconfirm"
COMM_TXCONFIRM = "comm_txconfirm"

COMM_TYPES: tuple[str, ...] = (
    COMM_GWALIVE,
    COMM_JOIN,
    COMM_GWRX,
    COMM_GWTX,
    COMM_RX,
    COMM_TX,
    COMM_TXINFO,
    COMM_TXSENDACK,
    COMM_TXSENDCONFIRM,
    COMM_TXCONFIRM,
)
# The kinds that follow one downlink request, in the order they come: all carry its Reference.
_REFERENCED = (COMM_GWTX, COMM_TXINFO, COMM_TXSENDACK, COMM_TXSENDCONFIRM, COMM_TXCONFIRM)
_WITH_ERROR = (COMM_TXSENDACK, COMM_TXSENDCONFIRM)

MAX_DEVICE_ID_CHARS = 64
MAX_CONNECTOR_CHARS = 32
_EUI = re.compile(r"[0-9A-Fa-f]{16}")
HEX_TEXT = re.compile(r"(?:[0-9A-Fa-f]{2})*")
DEVICE_ID = re.compile(r"[!-~]{1,%d}" % MAX_DEVICE_ID_CHARS)
CONNECTOR_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,%d}" % (MAX_CONNECTOR_CHARS - 1))


def is_eui(value: str) -> bool:
    """True for a 64-bit EUI written as 16 hex digits, in any case."""
    return _EUI.fullmatch(value) is not None


def normalize_device_key(value: str) -> str:
    """EUIs compare case-insensitively (lower case); other device ids are kept verbatim."""
    return value.lower() if is_eui(value) else value


def connector_name(value: str) -> str:
    """A connector as a plain lower-case name.

    Envelopes show connectors as the hex of their name, so a client may hand that form back;
    it is decoded when it spells a valid name.
    """
    text = value.strip().lower()
    if text and HEX_TEXT.fullmatch(text):
        try:
            decoded = bytes.fromhex(text).decode("ascii")
        except UnicodeDecodeError:
            decoded = ""
        if CONNECTOR_NAME.fullmatch(decoded):
            return decoded
    return text


def format_dt(dt: datetime, local_tz: tzinfo) -> str:
    """RFC 3339 in local_tz with its offset and 7 fractional digits (.NET style, as ResIOT sends)."""
    if dt.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    local = dt.astimezone(local_tz)
    text = local.isoformat(timespec="microseconds")  # C-fast; the same text when the offset is whole minutes
    if len(text) == 32 and local.year >= 1000:
        return f"{text[:26]}0{text[26:]}"
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond:06d}0{sign}{hours:02d}:{mins:02d}"


# ---------------------------------------------------------------------------------------------
# Communications (server -> monitor)


@dataclass(frozen=True, kw_only=True)
class Communication:
    comm_type: str
    connector: str
    dev_eui: str
    dt: datetime
    seq: int
    app_eui: str = ""
    port: int | None = None
    gateway_euis: tuple[str, ...] = ()
    payload: bytes = b""
    extra: dict[str, object] = field(default_factory=dict)
    # Downlink kinds only.
    command: str | None = None
    reference: str | None = None
    confirmation: bool | None = None
    priority: int = 0
    window: str = "BOTH"
    error: str | None = None

    def __post_init__(self) -> None:
        if self.comm_type not in COMM_TYPES:
            raise ValueError(f"unknown comm_type {self.comm_type!r}")
        if self.dt.tzinfo is None or self.dt.utcoffset() is None:
            raise ValueError("Communication.dt must be timezone-aware")
        if self.port is not None and not 0 <= self.port <= 255:
            raise ValueError(f"port {self.port} is outside 0..255")
        if not isinstance(self.gateway_euis, tuple):
            object.__setattr__(self, "gateway_euis", tuple(self.gateway_euis))


def _extra_value(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    # Extra is flat by contract; anything nested is shown as compact JSON rather than lost.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _stringify_extra(extra: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in extra.items():
        kind = type(value)
        if kind is str:  # the common kinds first, without a call each
            text = value
        elif kind is int or kind is float:
            text = str(value)
        else:
            text = _extra_value(value)
            if text is None:
                continue
        out[key if type(key) is str else str(key)] = text
    return out


def to_envelope(comm: Communication, local_tz: tzinfo) -> dict[str, Any]:
    """The JSON object a monitoring client receives for one communication."""
    env: dict[str, Any] = {
        "CommType": comm.comm_type,
        "MsgType": comm.comm_type,
        "Connector": comm.connector.encode("utf-8").hex(),
        "AppEui": normalize_device_key(comm.app_eui),
        "DevEui": normalize_device_key(comm.dev_eui),
        "Port": "" if comm.port is None else str(comm.port),
        "GatewayEUIs": [eui.lower() for eui in comm.gateway_euis],
        "Payload": comm.payload.hex(),
    }
    if comm.comm_type == COMM_TX:
        env["Command"] = comm.command or ""
        env["Reference"] = comm.reference or ""
        env["Confirmation"] = bool(comm.confirmation)
        env["Extra"] = {"priority": comm.priority, "window": comm.window}
    else:
        if comm.comm_type in _REFERENCED:
            env["Reference"] = comm.reference or ""
        if comm.comm_type in _WITH_ERROR:
            env["Error"] = comm.error or ""
        env["Extra"] = _stringify_extra(comm.extra)
    env["DT"] = format_dt(comm.dt, local_tz)
    env["Seq"] = comm.seq
    return env


# ensure_ascii keeps the frame sendable even if a string holds a lone surrogate. One encoder for
# every frame: json.dumps with options builds a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_orjson_dumps = orjson.dumps


def compact_json(obj: object) -> str:
    return _COMPACT_JSON.encode(obj)


def encode_envelope(comm: Communication, local_tz: tzinfo) -> str:
    """compact_json of the envelope. An envelope holds strings, integers, booleans and lists of
    strings only (Extra values are text), and for those orjson writes the very same text when it is
    printable ASCII, some ten times faster; anything else goes through the standard encoder."""
    return json_text(to_envelope(comm, local_tz))


def json_text(value: object) -> str:
    """compact_json(value), by orjson when that writes the same text (see encode_envelope). JSON
    is written part by part, so an envelope put together from json_text parts is encode_envelope's
    text."""
    try:
        data = _orjson_dumps(value)
    except TypeError:  # a lone surrogate, an integer beyond 64 bits
        return compact_json(value)
    # The standard encoder writes DEL and anything past ASCII as \u escapes.
    return data.decode() if data.isascii() and b"\x7f" not in data else compact_json(value)


# -- envelopes written straight from a record -------------------------------------------------
# The live stream's fast form for busy record kinds (a device's telemetry): no Communication and
# no envelope dict, the fixed part of the text kept per device, the time's text per second. It
# must give encode_envelope's text to the byte (tests/monitor/test_envelope_text.py compares them).


class CommHead:
    """What a stream filter reads of a communication (StreamFilter.matches_comm), and its seq."""

    __slots__ = ("comm_type", "connector", "dev_eui", "seq")

    def __init__(self, comm_type: str, connector: str, dev_eui: str, seq: int):
        self.comm_type = comm_type
        self.connector = connector
        self.dev_eui = dev_eui
        self.seq = seq


_PLAIN_HEADS: dict[tuple[str, str, str], str] = {}
_MAX_PLAIN_HEADS = 20_000  # devices; past that the table starts again (it is only a cache)


def plain_envelope_text(comm_type: str, connector: str, dev_eui: str, payload_hex: str,
                        extra_text: str, dt_text: str, seq: int) -> str:
    """encode_envelope's text of a communication with no AppEui, Port, gateways, Reference or
    Error (comm_rx, comm_join...), from its parts: `extra_text` is json_text of the stringified
    Extra, `dt_text` format_dt's text of its time."""
    key = (comm_type, connector, dev_eui)
    head = _PLAIN_HEADS.get(key)
    if head is None:
        if comm_type == COMM_TX or comm_type in _REFERENCED or comm_type in _WITH_ERROR:
            raise ValueError(f"{comm_type} is not a plain communication")
        if len(_PLAIN_HEADS) >= _MAX_PLAIN_HEADS:
            _PLAIN_HEADS.clear()
        kind = json_text(comm_type)
        head = _PLAIN_HEADS[key] = (
            f'{{"CommType":{kind},"MsgType":{kind},"Connector":"{connector.encode("utf-8").hex()}",'
            f'"AppEui":"","DevEui":{json_text(normalize_device_key(dev_eui))},"Port":"","GatewayEUIs":[],'
            f'"Payload":"')
    return f'{head}{payload_hex}","Extra":{extra_text},"DT":"{dt_text}","Seq":{seq}}}'


def extra_text(value: object) -> str | None:
    """What an envelope's Extra shows for one of a communication's `extra` values (None: left out)."""
    kind = type(value)
    return str(value) if kind is int or kind is float else _extra_value(value)


# (zone, "2026-11-22T03:04:05", the text before the microseconds, the text after them)
_last_dt: tuple[Any, str, str, str] = (None, "", "", "")


def record_dt_text(ts: str, local_tz: tzinfo) -> str:
    """format_dt of a record's time ("2026-11-22T03:04:05.123456Z" or any ISO 8601 text with an
    offset). Records come in time order: the text up to the second is kept from the last one."""
    global _last_dt
    if len(ts) != 27 or ts[19] != "." or ts[26] != "Z":
        return format_dt(datetime.fromisoformat(ts), local_tz)
    zone, second, before, after = _last_dt  # one read: worker threads render too
    if zone is not local_tz or second != ts[:19]:
        second = ts[:19]
        # An offset changes on whole seconds only, and shifts no microseconds.
        whole = format_dt(datetime.fromisoformat(f"{second}.000000Z"), local_tz)
        if len(whole) < 27 or whole[19:27] != ".0000000":
            return format_dt(datetime.fromisoformat(ts), local_tz)  # a year before 1000
        before, after = whole[:20], whole[26:]
        _last_dt = (local_tz, second, before, after)
    return f"{before}{ts[20:26]}{after}"


def quote(value: str, limit: int = 32) -> str:
    shown = value if len(value) <= limit else value[:limit] + "..."
    return json.dumps(shown)


@dataclass(frozen=True)
class Action:
    action_type: str
    actor: str
    target: str
    details: dict[str, object]
    dt: datetime
    seq: int


def action_to_frame(action: Action, local_tz: tzinfo) -> dict[str, Any]:
    return {
        "ActionType": action.action_type,
        "Actor": action.actor,
        "Target": action.target,
        "Details": action.details,
        "DT": format_dt(action.dt, local_tz),
        "Seq": action.seq,
    }


def encode_action(action: Action, local_tz: tzinfo) -> str:
    return json.dumps(action_to_frame(action, local_tz), separators=(",", ":"), default=str)


# ---------------------------------------------------------------------------------------------
# Stream filters (?types=...&dev=...&connector=...)


@dataclass(frozen=True)
class StreamFilter:
    types: frozenset[str] | None = None
    dev: frozenset[str] | None = None  # normalized with normalize_device_key
    connector: frozenset[str] | None = None  # plain lower-case names

    def matches_comm(self, comm: Communication) -> bool:
        if self.types is not None and comm.comm_type not in self.types:
            return False
        if self.dev is not None and normalize_device_key(comm.dev_eui) not in self.dev:
            return False
        if self.connector is not None and comm.connector.lower() not in self.connector:
            return False
        return True

    def matches_action(self, action: Action) -> bool:
        # Actions have no connector: that part of the filter does not apply to them.
        if self.types is not None and action.action_type not in self.types:
            return False
        if self.dev is not None and normalize_device_key(action.target) not in self.dev:
            return False
        return True


def _split(query: Mapping[str, str], name: str) -> list[str] | None:
    raw = query.get(name)
    if raw is None:
        return None
    items = [item.strip() for item in raw.split(",") if item.strip()]
    return items or None  # a blank parameter means "no filter", like an absent one


def parse_filter(
    query: Mapping[str, str], known_types: Collection[str] | None = COMM_TYPES
) -> StreamFilter:
    """Read the filter parameters of a monitoring URL; other parameters are ignored.

    `known_types` is what `types=` may name (COMM_TYPES for communications); None accepts any
    name, for the actions stream whose types grow with the product.
    """
    types = _split(query, "types")
    if types is not None and known_types is not None:
        unknown = [t for t in types if t not in known_types]
        if unknown:
            raise ValueError(
                f"types: unknown type {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known_types))}"
            )

    devs = _split(query, "dev")
    if devs is not None:
        for dev in devs:
            if not DEVICE_ID.fullmatch(dev):
                raise ValueError(
                    f"dev: {quote(dev)} is neither an EUI nor a device id "
                    f"(1 to {MAX_DEVICE_ID_CHARS} printable ASCII characters)"
                )

    connectors = _split(query, "connector")
    names = None
    if connectors is not None:
        names = [connector_name(c) for c in connectors]
        for name in names:
            if not CONNECTOR_NAME.fullmatch(name):
                raise ValueError(f"connector: {quote(name)} is not a connector name")

    return StreamFilter(
        types=frozenset(types) if types is not None else None,
        dev=frozenset(normalize_device_key(d) for d in devs) if devs is not None else None,
        connector=frozenset(names) if names is not None else None,
    )

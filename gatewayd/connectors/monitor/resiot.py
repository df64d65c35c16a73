"""ResIOT-style monitoring streams: communication envelopes, TX requests, filters, actions.

Pure data in, pure data out: the monitoring transport feeds frames in and sends what comes out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Collection, Mapping

from gatewayd.errors import ProtocolError

COMM_GWALIVE = "comm_gwalive"
COMM_JOIN = "comm_join"
COMM_GWRX = "comm_gwrx"
COMM_RX = "comm_rx"
COMM_TX = "comm_tx"
COMM_TXSENDACK = "comm_txsendack"
COMM_TXCONFIRM = "comm_txconfirm"

COMM_TYPES: tuple[str, ...] = (
    COMM_GWALIVE,
    COMM_JOIN,
    COMM_GWRX,
    COMM_RX,
    COMM_TX,
    COMM_TXSENDACK,
    COMM_TXCONFIRM,
)

MAX_TX_FRAME_CHARS = 16 * 1024
MAX_TX_PAYLOAD_BYTES = 242
MAX_REFERENCE_CHARS = 128
MAX_DEVICE_ID_CHARS = 64
MAX_CONNECTOR_CHARS = 32
MAX_WS_COMMAND_CHARS = 64
TX_WINDOWS = ("RX1", "RX2", "BOTH")  # a TX request's receive window; comm_tx Extra.window echoes it
DEFAULT_TX_WINDOW = "BOTH"

_EUI = re.compile(r"[0-9A-Fa-f]{16}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_DEVICE_ID = re.compile(r"[!-~]{1,%d}" % MAX_DEVICE_ID_CHARS)
_CONNECTOR_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,%d}" % (MAX_CONNECTOR_CHARS - 1))
_PORT_TEXT = re.compile(r"[0-9]{1,3}")


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
    if text and _HEX.fullmatch(text):
        try:
            decoded = bytes.fromhex(text).decode("ascii")
        except UnicodeDecodeError:
            decoded = ""
        if _CONNECTOR_NAME.fullmatch(decoded):
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
        if comm.comm_type in (COMM_TXSENDACK, COMM_TXCONFIRM):
            env["Reference"] = comm.reference or ""
        if comm.comm_type == COMM_TXSENDACK:
            env["Error"] = comm.error or ""
        env["Extra"] = _stringify_extra(comm.extra)
    env["DT"] = format_dt(comm.dt, local_tz)
    env["Seq"] = comm.seq
    return env


# ensure_ascii keeps the frame sendable even if a string holds a lone surrogate. One encoder for
# every frame: json.dumps with options builds a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def _compact(obj: object) -> str:
    return _COMPACT_JSON.encode(obj)


def encode_envelope(comm: Communication, local_tz: tzinfo) -> str:
    return _compact(to_envelope(comm, local_tz))


# ---------------------------------------------------------------------------------------------
# TX requests (monitor -> server)


class TxError(ProtocolError):
    """A TX request that cannot be accepted; `details` goes back to the client verbatim."""

    def __init__(self, details: str, reference: str = ""):
        super().__init__("bad_tx", details)
        self.details = details
        self.reference = reference


@dataclass(frozen=True)
class TxRequest:
    payload: bytes
    app_eui: str  # lower-case hex, "" when not given
    dev_eui: str  # lower-case EUI, or a non-LoRaWAN device id verbatim
    dev_is_eui: bool
    connector: str  # plain name, "" = the connector the device was last heard on
    port: int
    ws_command: str | None
    reference: str
    raw: bool
    confirm: bool
    window: str = DEFAULT_TX_WINDOW


_MISSING = object()


class _Fields:
    """Case-insensitive access to a TX object's fields (clients write DevEUI, DevEui, ...)."""

    def __init__(self, obj: Mapping[str, object]):
        self._by_name: dict[str, list[tuple[str, object]]] = {}
        for key, value in obj.items():
            self._by_name.setdefault(key.lower(), []).append((key, value))

    def get(self, name: str, reference: str) -> object:
        """The value of `name`, or _MISSING when absent or null (null means "not given")."""
        entries = self._by_name.get(name.lower(), [])
        values = [value for _, value in entries]
        if len(entries) > 1 and not _all_same_scalar(values):
            spellings = " and ".join(key for key, _ in entries)
            raise TxError(f"{name} is given twice with different values ({spellings})", reference)
        if not entries or values[0] is None:
            return _MISSING
        return values[0]


def _all_same_scalar(values: list[object]) -> bool:
    first = values[0]
    scalars = (str, int, float, bool, type(None))
    return all(
        isinstance(v, scalars) and type(v) is type(first) and v == first for v in values
    )


def _optional_str(fields: _Fields, name: str, reference: str) -> str:
    value = fields.get(name, reference)
    if value is _MISSING:
        return ""
    if not isinstance(value, str):
        raise TxError(f"{name} must be a string", reference)
    return value


def _optional_bool(fields: _Fields, name: str, reference: str) -> bool:
    value = fields.get(name, reference)
    if value is _MISSING:
        return False
    if not isinstance(value, bool):
        raise TxError(f"{name} must be true or false", reference)
    return value


def _read_reference(fields: _Fields) -> str:
    value = fields.get("Reference", "")
    if value is _MISSING:
        return ""
    if not isinstance(value, str):
        raise TxError("Reference must be a string", "")
    if len(value) > MAX_REFERENCE_CHARS:
        raise TxError(f"Reference is {len(value)} characters long, the limit is {MAX_REFERENCE_CHARS}", "")
    return value


def _read_function(fields: _Fields, reference: str) -> None:
    value = fields.get("function", reference)
    if value is _MISSING:
        raise TxError('function is required and must be "TX"', reference)
    if not isinstance(value, str):
        raise TxError('function must be the string "TX"', reference)
    if value != "TX":
        raise TxError(f'function {_quote(value)} is not supported, only "TX" is', reference)


def _read_dev_eui(fields: _Fields, reference: str) -> str:
    value = fields.get("DevEui", reference)
    if value is _MISSING or value == "":
        raise TxError("DevEui is required", reference)
    if not isinstance(value, str):
        raise TxError("DevEui must be a string", reference)
    if not _DEVICE_ID.fullmatch(value):
        raise TxError(
            "DevEui must be a device EUI (16 hex digits) or a device id of 1 to "
            f"{MAX_DEVICE_ID_CHARS} printable ASCII characters without spaces",
            reference,
        )
    return normalize_device_key(value)


def _read_app_eui(fields: _Fields, reference: str) -> str:
    value = _optional_str(fields, "AppEui", reference)
    if value and not is_eui(value):
        raise TxError(f"AppEui must be 16 hex digits, got {len(value)} characters", reference)
    return value.lower()


def _read_connector(fields: _Fields, reference: str) -> str:
    value = _optional_str(fields, "Connector", reference)
    name = connector_name(value)
    if name and not _CONNECTOR_NAME.fullmatch(name):
        raise TxError(
            f"Connector must be a connector name (lower-case letters, digits, '_', '.', '-', at most "
            f"{MAX_CONNECTOR_CHARS} characters) or the hex of one",
            reference,
        )
    return name


def _read_port(fields: _Fields, reference: str) -> int:
    value = fields.get("Port", reference)
    if value is _MISSING:
        raise TxError("Port is required", reference)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TxError("Port must be an integer or a string of digits", reference)
    if isinstance(value, str):
        if not _PORT_TEXT.fullmatch(value):
            raise TxError("Port must be an integer or a string of digits", reference)
        value = int(value)
    if not 0 <= value <= 255:
        raise TxError(f"Port {value} is out of range 0..255", reference)
    return value


def _read_ws_command(fields: _Fields, reference: str) -> str | None:
    value = _optional_str(fields, "WSCommand", reference)
    if not value:
        return None
    if len(value) > MAX_WS_COMMAND_CHARS or not value.isprintable():
        raise TxError(
            f"WSCommand must be at most {MAX_WS_COMMAND_CHARS} printable characters", reference
        )
    return value


def _read_window(fields: _Fields, reference: str) -> str:
    value = _optional_str(fields, "Window", reference)
    if not value:
        return DEFAULT_TX_WINDOW
    window = value.upper()
    if window not in TX_WINDOWS:
        raise TxError(f"Window {_quote(value)} is not one of {', '.join(TX_WINDOWS)}", reference)
    return window


def _read_payload(fields: _Fields, raw: bool, reference: str) -> bytes:
    value = fields.get("Payload", reference)
    if value is _MISSING:
        raise TxError("Payload is required", reference)
    if not isinstance(value, str):
        raise TxError("Payload must be a string", reference)
    if raw:
        try:
            payload = value.encode("utf-8")
        except UnicodeEncodeError:
            raise TxError("Payload is not valid Unicode text", reference) from None
    else:
        if len(value) % 2:
            raise TxError(
                f"Payload must be hex with an even number of digits (Raw is false), got {len(value)} characters",
                reference,
            )
        if not _HEX.fullmatch(value):
            raise TxError("Payload must be hex digits only (Raw is false)", reference)
        payload = bytes.fromhex(value)
    if len(payload) > MAX_TX_PAYLOAD_BYTES:
        raise TxError(
            f"Payload is {len(payload)} bytes, the limit is {MAX_TX_PAYLOAD_BYTES}", reference
        )
    return payload


def _quote(value: str, limit: int = 32) -> str:
    shown = value if len(value) <= limit else value[:limit] + "..."
    return json.dumps(shown)


def parse_tx(text: str | bytes) -> TxRequest:
    """Validate one TX request frame. Raises TxError (and nothing else) for any bad input."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise TxError("frame is not valid UTF-8") from None
    if len(text) > MAX_TX_FRAME_CHARS:
        raise TxError(f"frame is {len(text)} characters long, the limit is {MAX_TX_FRAME_CHARS}")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise TxError("frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise TxError("frame must be a JSON object")

    fields = _Fields(obj)
    reference = _read_reference(fields)
    _read_function(fields, reference)
    dev_eui = _read_dev_eui(fields, reference)
    app_eui = _read_app_eui(fields, reference)
    connector = _read_connector(fields, reference)
    port = _read_port(fields, reference)
    ws_command = _read_ws_command(fields, reference)
    raw = _optional_bool(fields, "Raw", reference)
    confirm = _optional_bool(fields, "Confirm", reference)
    payload = _read_payload(fields, raw, reference)
    window = _read_window(fields, reference)
    return TxRequest(
        payload=payload,
        app_eui=app_eui,
        dev_eui=dev_eui,
        dev_is_eui=is_eui(dev_eui),
        connector=connector,
        port=port,
        ws_command=ws_command,
        reference=reference,
        raw=raw,
        confirm=confirm,
        window=window,
    )


def tx_reply(result_ok: bool, details: str, reference: str) -> str:
    return _compact(
        {"Result": "Success" if result_ok else "Fail", "Details": details, "Reference": reference}
    )


# ---------------------------------------------------------------------------------------------
# Actions (server -> monitor, second stream)


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
            if not _DEVICE_ID.fullmatch(dev):
                raise ValueError(
                    f"dev: {_quote(dev)} is neither an EUI nor a device id "
                    f"(1 to {MAX_DEVICE_ID_CHARS} printable ASCII characters)"
                )

    connectors = _split(query, "connector")
    names = None
    if connectors is not None:
        names = [connector_name(c) for c in connectors]
        for name in names:
            if not _CONNECTOR_NAME.fullmatch(name):
                raise ValueError(f"connector: {_quote(name)} is not a connector name")

    return StreamFilter(
        types=frozenset(types) if types is not None else None,
        dev=frozenset(normalize_device_key(d) for d in devs) if devs is not None else None,
        connector=frozenset(names) if names is not None else None,
    )

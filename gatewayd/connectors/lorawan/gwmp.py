"""Semtech UDP packet-forwarder protocol (GWMP), versions 1 and 2.

Header: version (1 or 2) | token (2 bytes) | identifier. The token is handled as a big-endian
integer; it is opaque and only ever echoed.

Tolerance, so that a gateway's datagram is not lost to one bad part:
- A PUSH_DATA `rxpk` entry that is malformed (missing or mistyped field, bad base64, `size` not
  matching the data) is skipped; the datagram still parses and still deserves its PUSH_ACK.
  `PushData.bad_rxpk` counts the skipped entries and `PushData.errors` says why. A malformed
  `stat` object is dropped the same way (stat = None, reason in `errors`).
- Trailing NUL bytes after the JSON are ignored (some gateways send one after TX_ACK).
- Base64 without padding is accepted.
- TX_ACK is accepted with version 1 too, and bytes after a PULL_DATA's EUI are ignored.
A datagram whose header, EUI or JSON document is bad raises ProtocolError; `parse_header` still
reads its version, token and identifier when they are intact.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple

from ...errors import ProtocolError
from .frames import hex_to_eui

VERSIONS = (1, 2)
MAX_DATAGRAM = 65_507
HEADER_LEN = 4
EUI_LEN = 8

TX_ACK_ERRORS = frozenset(
    {
        "NONE",
        "TOO_LATE",
        "TOO_EARLY",
        "COLLISION_PACKET",
        "COLLISION_BEACON",
        "TX_FREQ",
        "TX_POWER",
        "GPS_UNLOCKED",
    }
)


class PacketId(IntEnum):
    PUSH_DATA = 0x00
    PUSH_ACK = 0x01
    PULL_DATA = 0x02
    PULL_RESP = 0x03
    PULL_ACK = 0x04
    TX_ACK = 0x05


class Header(NamedTuple):
    version: int
    token: int
    identifier: int


@dataclass(frozen=True, kw_only=True)
class RxPacket:
    """One received frame. Optional fields are None when the gateway left them out."""

    tmst: int
    freq: float
    modu: str
    datr: str | int
    data: bytes
    stat: int = 1
    time: str | None = None
    chan: int | None = None
    rfch: int | None = None
    codr: str | None = None
    rssi: int | float = 0
    lsnr: float | None = None
    size: int = field(default=-1)  # defaults to len(data)

    def __post_init__(self) -> None:
        if self.size == -1:
            object.__setattr__(self, "size", len(self.data))

    @property
    def crc_ok(self) -> bool:
        return self.stat == 1


@dataclass(frozen=True, kw_only=True)
class GatewayStat:
    time: str | None = None
    lati: float | None = None
    long: float | None = None
    alti: int | float | None = None
    rxnb: int | None = None
    rxok: int | None = None
    rxfw: int | None = None
    ackr: float | None = None
    dwnb: int | None = None
    txnb: int | None = None


@dataclass(frozen=True, kw_only=True)
class TxPacket:
    """One frame to send. With `imme` false the gateway sends it when its counter hits `tmst`."""

    freq: float
    datr: str | int
    data: bytes
    imme: bool = False
    tmst: int | None = None
    rfch: int = 0
    powe: int = 14
    modu: str = "LORA"
    codr: str | None = "4/5"
    ipol: bool = True

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class PushData:
    version: int
    token: int
    gateway_eui: str
    rxpk: list[RxPacket]
    stat: GatewayStat | None
    bad_rxpk: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class PullData:
    version: int
    token: int
    gateway_eui: str


@dataclass(frozen=True)
class TxAck:
    version: int
    token: int
    gateway_eui: str
    error: str = "NONE"
    warn: str | None = None


@dataclass(frozen=True)
class PushAck:
    version: int
    token: int


@dataclass(frozen=True)
class PullAck:
    version: int
    token: int


@dataclass(frozen=True)
class PullResp:
    version: int
    token: int
    txpk: TxPacket


# --------------------------------------------------------------------------------------------
# Parsing


def parse_header(data: bytes) -> Header:
    if len(data) < HEADER_LEN:
        raise ProtocolError("short", f"datagram is {len(data)} bytes; the header alone is 4")
    if len(data) > MAX_DATAGRAM:
        raise ProtocolError(
            "bad_length", f"datagram is {len(data)} bytes; the maximum is {MAX_DATAGRAM}"
        )
    if data[0] not in VERSIONS:
        raise ProtocolError("bad_version", f"protocol version {data[0]} is not 1 or 2")
    return Header(data[0], int.from_bytes(data[1:3], "big"), data[3])


def parse_datagram(data: bytes) -> PushData | PullData | TxAck:
    """Parse a gateway -> server datagram (PUSH_DATA, PULL_DATA or TX_ACK)."""
    data = bytes(data)
    version, token, ident = parse_header(data)
    if ident not in (PacketId.PUSH_DATA, PacketId.PULL_DATA, PacketId.TX_ACK):
        if ident <= max(PacketId):
            raise ProtocolError(
                "bad_id", f"{PacketId(ident).name} is sent by a server, not by a gateway"
            )
        raise ProtocolError("bad_id", f"unknown packet identifier 0x{ident:02x}")
    name = PacketId(ident).name
    if len(data) < HEADER_LEN + EUI_LEN:
        raise ProtocolError(
            "short", f"{name} is {len(data)} bytes; header and gateway EUI need 12"
        )
    gateway_eui = data[4:12].hex()
    payload = data[12:].rstrip(b"\x00")
    if ident == PacketId.PULL_DATA:
        return PullData(version, token, gateway_eui)
    if ident == PacketId.TX_ACK:
        return _parse_tx_ack(version, token, gateway_eui, payload)
    return _parse_push_data(version, token, gateway_eui, payload)


def _parse_push_data(version: int, token: int, gateway_eui: str, payload: bytes) -> PushData:
    if not payload:
        raise ProtocolError("bad_json", "PUSH_DATA carries no JSON document")
    doc = _json_object(payload, "PUSH_DATA")
    errors: list[str] = []
    rxpk: list[RxPacket] = []
    entries = doc.get("rxpk", [])
    if not isinstance(entries, list):
        raise ProtocolError("invalid", f"rxpk must be an array, got {_kind(entries)}")
    for i, entry in enumerate(entries):
        packet = _usual_rx_packet(entry)
        if packet is None:
            try:
                packet = _rx_packet(entry, f"rxpk[{i}]")
            except ProtocolError as exc:
                errors.append(exc.message)
                continue
        rxpk.append(packet)
    bad_rxpk = len(errors)
    stat = None
    if "stat" in doc:
        try:
            stat = _gateway_stat(doc["stat"])
        except ProtocolError as exc:
            errors.append(exc.message)
    return PushData(version, token, gateway_eui, rxpk, stat, bad_rxpk, tuple(errors))


def _parse_tx_ack(version: int, token: int, gateway_eui: str, payload: bytes) -> TxAck:
    if not payload.strip():
        return TxAck(version, token, gateway_eui)
    doc = _json_object(payload, "TX_ACK")
    ack = doc.get("txpk_ack", {})
    if not isinstance(ack, dict):
        raise ProtocolError("invalid", f"txpk_ack must be an object, got {_kind(ack)}")
    error = _opt(ack, "error", str, "txpk_ack") or "NONE"
    warn = _opt(ack, "warn", str, "txpk_ack")
    return TxAck(version, token, gateway_eui, error, warn)


def parse_server_datagram(data: bytes) -> PushAck | PullAck | PullResp:
    """Parse a server -> gateway datagram (what a gateway or a simulator receives)."""
    data = bytes(data)
    version, token, ident = parse_header(data)
    if ident == PacketId.PUSH_ACK:
        return PushAck(version, token)
    if ident == PacketId.PULL_ACK:
        return PullAck(version, token)
    if ident == PacketId.PULL_RESP:
        doc = _json_object(data[4:].rstrip(b"\x00"), "PULL_RESP")
        if "txpk" not in doc:
            raise ProtocolError("invalid", "PULL_RESP lacks txpk")
        return PullResp(version, token, _tx_packet(doc["txpk"]))
    raise ProtocolError("bad_id", f"packet identifier 0x{ident:02x} is not sent by a server")


# --------------------------------------------------------------------------------------------
# Field readers


_TYPE_NAMES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _kind(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _wanted(kinds: tuple[type, ...]) -> str:
    if float in kinds:
        return "a number"
    name = _TYPE_NAMES[kinds[0]]
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_object(payload: bytes, what: str) -> dict:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("bad_json", f"{what} JSON is not UTF-8 (byte {exc.start})") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ProtocolError("bad_json", f"{what} JSON is nested too deeply") from None
    except ValueError as exc:
        raise ProtocolError("bad_json", f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ProtocolError("invalid", f"{what} JSON must be an object, got {_kind(doc)}")
    return doc


def _opt(obj: dict, key: str, kind: type | tuple[type, ...], ctx: str) -> Any:
    """obj[key] if present and of `kind` (bools are never numbers), None if absent."""
    if key not in obj:
        return None
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
    if not ok:
        raise ProtocolError(
            "invalid", f"{ctx}.{key} must be {_wanted(kinds)}, got {_kind(value)}"
        )
    return value


def _req(obj: dict, key: str, kind: type | tuple[type, ...], ctx: str) -> Any:
    if key not in obj:
        raise ProtocolError("invalid", f"{ctx} lacks required field {key!r}")
    return _opt(obj, key, kind, ctx)


_NUMBER = (int, float)


def _b64(text: str, ctx: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_base64", f"{ctx}.data is not valid base64") from None


def _datr(obj: dict, modu: str, ctx: str) -> str | int:
    if modu == "LORA":
        return _req(obj, "datr", str, ctx)
    if modu == "FSK":
        return _req(obj, "datr", int, ctx)
    raise ProtocolError("invalid", f"{ctx}.modu must be \"LORA\" or \"FSK\", got {modu!r}")


def _rx_packet(obj: Any, ctx: str) -> RxPacket:
    if not isinstance(obj, dict):
        raise ProtocolError("invalid", f"{ctx} must be an object, got {_kind(obj)}")
    tmst = _req(obj, "tmst", int, ctx)
    if not 0 <= tmst <= 0xFFFF_FFFF:
        raise ProtocolError("invalid", f"{ctx}.tmst {tmst} is not a 32-bit counter")
    modu = _req(obj, "modu", str, ctx)
    data = _b64(_req(obj, "data", str, ctx), ctx)
    size = _opt(obj, "size", int, ctx)
    if size is not None and size != len(data):
        raise ProtocolError(
            "bad_length", f"{ctx}.size is {size} but data decodes to {len(data)} bytes"
        )
    rssi = _opt(obj, "rssi", _NUMBER, ctx)
    lsnr = _opt(obj, "lsnr", _NUMBER, ctx)
    if rssi is None:
        rssi, lsnr = _from_rsig(obj, ctx, lsnr)
    stat = _req(obj, "stat", int, ctx)
    if stat not in (-1, 0, 1):
        raise ProtocolError("invalid", f"{ctx}.stat must be 1, 0 or -1, got {stat}")
    return RxPacket(
        tmst=tmst,
        freq=_req(obj, "freq", _NUMBER, ctx),
        modu=modu,
        datr=_datr(obj, modu, ctx),
        data=data,
        stat=stat,
        time=_opt(obj, "time", str, ctx),
        chan=_opt(obj, "chan", int, ctx),
        rfch=_opt(obj, "rfch", int, ctx),
        codr=_opt(obj, "codr", str, ctx),
        rssi=rssi,
        lsnr=lsnr,
    )


_ABSENT = object()
_STATS = (-1, 0, 1)
_USUAL_OPTIONAL = (("time", str), ("codr", str), ("chan", int), ("rfch", int))


def _finite_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))


def _usual_rx_packet(obj: Any) -> RxPacket | None:
    """The common rxpk (every field present has its plain JSON type, signal in rssi/lsnr) read
    with type tests only; None for anything else, which `_rx_packet` reads or explains."""
    if type(obj) is not dict:
        return None
    get = obj.get
    tmst, modu, text, stat, freq, datr, rssi = (get("tmst"), get("modu"), get("data"), get("stat"),
                                                get("freq"), get("datr"), get("rssi"))
    if not (type(tmst) is int and 0 <= tmst <= 0xFFFF_FFFF and type(text) is str and type(stat) is int
            and stat in _STATS and _finite_number(freq) and _finite_number(rssi)
            and ((modu == "LORA" and type(datr) is str) or (modu == "FSK" and type(datr) is int))):
        return None
    optional = []
    for key, kind in _USUAL_OPTIONAL:
        value = get(key, _ABSENT)
        if value is _ABSENT:
            value = None
        elif type(value) is not kind:
            return None
        optional.append(value)
    time, codr, chan, rfch = optional
    lsnr, size = get("lsnr", _ABSENT), get("size", _ABSENT)
    if lsnr is _ABSENT:
        lsnr = None
    elif not _finite_number(lsnr):
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if size is not _ABSENT and (type(size) is not int or size != len(data)):
        return None
    # Every field is checked: fill the frozen instance directly, as the generated __init__ would
    # with one object.__setattr__ per field (most of this function's cost otherwise).
    packet = object.__new__(RxPacket)
    packet.__dict__.update(tmst=tmst, freq=freq, modu=modu, datr=datr, data=data, stat=stat, time=time, chan=chan,
                           rfch=rfch, codr=codr, rssi=rssi, lsnr=lsnr, size=len(data))
    return packet


def _from_rsig(obj: dict, ctx: str, lsnr: float | None) -> tuple[int | float, float | None]:
    """Gateways with several antennas may give signal data only in `rsig`; use its first entry."""
    rsig = _opt(obj, "rsig", list, ctx)
    if not rsig or not isinstance(rsig[0], dict):
        raise ProtocolError("invalid", f"{ctx} lacks required field 'rssi'")
    first = rsig[0]
    rssi = _opt(first, "rssic", _NUMBER, f"{ctx}.rsig[0]")
    if rssi is None:
        raise ProtocolError("invalid", f"{ctx} lacks required field 'rssi'")
    if lsnr is None:
        lsnr = _opt(first, "lsnr", _NUMBER, f"{ctx}.rsig[0]")
    return rssi, lsnr


def _gateway_stat(obj: Any) -> GatewayStat:
    if not isinstance(obj, dict):
        raise ProtocolError("invalid", f"stat must be an object, got {_kind(obj)}")
    return GatewayStat(
        time=_opt(obj, "time", str, "stat"),
        lati=_opt(obj, "lati", _NUMBER, "stat"),
        long=_opt(obj, "long", _NUMBER, "stat"),
        alti=_opt(obj, "alti", _NUMBER, "stat"),
        rxnb=_opt(obj, "rxnb", int, "stat"),
        rxok=_opt(obj, "rxok", int, "stat"),
        rxfw=_opt(obj, "rxfw", int, "stat"),
        ackr=_opt(obj, "ackr", _NUMBER, "stat"),
        dwnb=_opt(obj, "dwnb", int, "stat"),
        txnb=_opt(obj, "txnb", int, "stat"),
    )


def _tx_packet(obj: Any) -> TxPacket:
    ctx = "txpk"
    if not isinstance(obj, dict):
        raise ProtocolError("invalid", f"txpk must be an object, got {_kind(obj)}")
    modu = _opt(obj, "modu", str, ctx) or "LORA"
    data = _b64(_req(obj, "data", str, ctx), ctx)
    size = _opt(obj, "size", int, ctx)
    if size is not None and size != len(data):
        raise ProtocolError(
            "bad_length", f"txpk.size is {size} but data decodes to {len(data)} bytes"
        )
    imme = bool(_opt(obj, "imme", bool, ctx))
    tmst = _opt(obj, "tmst", int, ctx)
    if not imme and tmst is None:
        raise ProtocolError("invalid", "txpk needs tmst unless imme is true")
    powe = _opt(obj, "powe", int, ctx)
    return TxPacket(
        freq=_req(obj, "freq", _NUMBER, ctx),
        datr=_datr(obj, modu, ctx),
        data=data,
        imme=imme,
        tmst=tmst,
        rfch=_opt(obj, "rfch", int, ctx) or 0,
        powe=14 if powe is None else powe,
        modu=modu,
        codr=_opt(obj, "codr", str, ctx),
        ipol=bool(_opt(obj, "ipol", bool, ctx)),
    )


# --------------------------------------------------------------------------------------------
# Encoding


def _header(version: int, token: int, ident: PacketId) -> bytes:
    if version not in VERSIONS:
        raise ProtocolError("bad_version", f"protocol version {version!r} is not 1 or 2")
    if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token <= 0xFFFF:
        raise ProtocolError("bad_token", f"token must be in 0..65535, got {token!r}")
    return bytes((version,)) + token.to_bytes(2, "big") + bytes((ident,))


def _json_bytes(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def _b64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _without_none(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if v is not None}


def rx_packet_json(p: RxPacket) -> dict:
    return _without_none(
        {
            "time": p.time,
            "tmst": p.tmst,
            "chan": p.chan,
            "rfch": p.rfch,
            "freq": p.freq,
            "stat": p.stat,
            "modu": p.modu,
            "datr": p.datr,
            "codr": p.codr,
            "rssi": p.rssi,
            "lsnr": p.lsnr,
            "size": p.size,
            "data": _b64_text(p.data),
        }
    )


def tx_packet_json(p: TxPacket) -> dict:
    if not p.imme and p.tmst is None:
        raise ProtocolError("invalid", "txpk needs tmst unless imme is true")
    return _without_none(
        {
            "imme": p.imme,
            "tmst": p.tmst,
            "freq": p.freq,
            "rfch": p.rfch,
            "powe": p.powe,
            "modu": p.modu,
            "datr": p.datr,
            "codr": p.codr,
            "ipol": p.ipol,
            "size": p.size,
            "data": _b64_text(p.data),
        }
    )


def push_ack(version: int, token: int) -> bytes:
    return _header(version, token, PacketId.PUSH_ACK)


def pull_ack(version: int, token: int) -> bytes:
    return _header(version, token, PacketId.PULL_ACK)


def pull_resp(version: int, token: int, txpk: TxPacket) -> bytes:
    """Version 1 gateways ignore the token; pass 0 for them."""
    return _header(version, token, PacketId.PULL_RESP) + _json_bytes({"txpk": tx_packet_json(txpk)})


def push_data(
    version: int,
    token: int,
    gateway_eui: str,
    rxpk: list[RxPacket] | tuple[RxPacket, ...] = (),
    stat: GatewayStat | None = None,
) -> bytes:
    doc: dict[str, Any] = {}
    if rxpk:
        doc["rxpk"] = [rx_packet_json(p) for p in rxpk]
    if stat is not None:
        doc["stat"] = _without_none(asdict(stat))
    return _header(version, token, PacketId.PUSH_DATA) + hex_to_eui(gateway_eui) + _json_bytes(doc)


def pull_data(version: int, token: int, gateway_eui: str) -> bytes:
    return _header(version, token, PacketId.PULL_DATA) + hex_to_eui(gateway_eui)


def tx_ack(
    version: int, token: int, gateway_eui: str, error: str | None = "NONE", *, nul: bool = False
) -> bytes:
    """`error=None` sends no JSON at all (older gateways on success); `nul` appends a 0 byte."""
    body = b"" if error is None else _json_bytes({"txpk_ack": {"error": error}})
    return (
        _header(version, token, PacketId.TX_ACK)
        + hex_to_eui(gateway_eui)
        + body
        + (b"\x00" if nul else b"")
    )

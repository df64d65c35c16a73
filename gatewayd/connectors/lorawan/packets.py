"""The JSON objects inside GWMP datagrams: received packets (rxpk), gateway status (stat) and packets
to transmit (txpk), read strictly (precise errors, bounded numbers) and written. Pure."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ...errors import ProtocolError


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


_TYPE_NAMES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def describe_type(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _wanted(kinds: tuple[type, ...]) -> str:
    if float in kinds:
        return "a number"
    name = _TYPE_NAMES[kinds[0]]
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_object(payload: bytes, what: str) -> dict:
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
        raise ProtocolError("invalid", f"{what} JSON must be an object, got {describe_type(doc)}")
    return doc


def optional_field(obj: dict, key: str, kind: type | tuple[type, ...], ctx: str) -> Any:
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
            "invalid", f"{ctx}.{key} must be {_wanted(kinds)}, got {describe_type(value)}"
        )
    return value


def _req(obj: dict, key: str, kind: type | tuple[type, ...], ctx: str) -> Any:
    if key not in obj:
        raise ProtocolError("invalid", f"{ctx} lacks required field {key!r}")
    return optional_field(obj, key, kind, ctx)


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


def read_rx_packet(obj: Any, ctx: str) -> RxPacket:
    if not isinstance(obj, dict):
        raise ProtocolError("invalid", f"{ctx} must be an object, got {describe_type(obj)}")
    tmst = _req(obj, "tmst", int, ctx)
    if not 0 <= tmst <= 0xFFFF_FFFF:
        raise ProtocolError("invalid", f"{ctx}.tmst {tmst} is not a 32-bit counter")
    modu = _req(obj, "modu", str, ctx)
    data = _b64(_req(obj, "data", str, ctx), ctx)
    size = optional_field(obj, "size", int, ctx)
    if size is not None and size != len(data):
        raise ProtocolError(
            "bad_length", f"{ctx}.size is {size} but data decodes to {len(data)} bytes"
        )
    rssi = optional_field(obj, "rssi", _NUMBER, ctx)
    lsnr = optional_field(obj, "lsnr", _NUMBER, ctx)
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
        time=optional_field(obj, "time", str, ctx),
        chan=optional_field(obj, "chan", int, ctx),
        rfch=optional_field(obj, "rfch", int, ctx),
        codr=optional_field(obj, "codr", str, ctx),
        rssi=rssi,
        lsnr=lsnr,
    )


_ABSENT = object()
_STATS = (-1, 0, 1)
_USUAL_OPTIONAL = (("time", str), ("codr", str), ("chan", int), ("rfch", int))


def _finite_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))


def read_usual_rx_packet(obj: Any) -> RxPacket | None:
    """The common rxpk (every field present has its plain JSON type, signal in rssi/lsnr) read
    with type tests only; None for anything else, which `read_rx_packet` reads or explains."""
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
    rsig = optional_field(obj, "rsig", list, ctx)
    if not rsig or not isinstance(rsig[0], dict):
        raise ProtocolError("invalid", f"{ctx} lacks required field 'rssi'")
    first = rsig[0]
    rssi = optional_field(first, "rssic", _NUMBER, f"{ctx}.rsig[0]")
    if rssi is None:
        raise ProtocolError("invalid", f"{ctx} lacks required field 'rssi'")
    if lsnr is None:
        lsnr = optional_field(first, "lsnr", _NUMBER, f"{ctx}.rsig[0]")
    return rssi, lsnr


def read_gateway_stat(obj: Any) -> GatewayStat:
    if not isinstance(obj, dict):
        raise ProtocolError("invalid", f"stat must be an object, got {describe_type(obj)}")
    return GatewayStat(
        time=optional_field(obj, "time", str, "stat"),
        lati=optional_field(obj, "lati", _NUMBER, "stat"),
        long=optional_field(obj, "long", _NUMBER, "stat"),
        alti=optional_field(obj, "alti", _NUMBER, "stat"),
        rxnb=optional_field(obj, "rxnb", int, "stat"),
        rxok=optional_field(obj, "rxok", int, "stat"),
        rxfw=optional_field(obj, "rxfw", int, "stat"),
        ackr=optional_field(obj, "ackr", _NUMBER, "stat"),
        dwnb=optional_field(obj, "dwnb", int, "stat"),
        txnb=optional_field(obj, "txnb", int, "stat"),
    )


def read_tx_packet(obj: Any) -> TxPacket:
    ctx = "txpk"
    if not isinstance(obj, dict):
        raise ProtocolError("invalid", f"txpk must be an object, got {describe_type(obj)}")
    modu = optional_field(obj, "modu", str, ctx) or "LORA"
    data = _b64(_req(obj, "data", str, ctx), ctx)
    size = optional_field(obj, "size", int, ctx)
    if size is not None and size != len(data):
        raise ProtocolError(
            "bad_length", f"txpk.size is {size} but data decodes to {len(data)} bytes"
        )
    imme = bool(optional_field(obj, "imme", bool, ctx))
    tmst = optional_field(obj, "tmst", int, ctx)
    if not imme and tmst is None:
        raise ProtocolError("invalid", "txpk needs tmst unless imme is true")
    powe = optional_field(obj, "powe", int, ctx)
    return TxPacket(
        freq=_req(obj, "freq", _NUMBER, ctx),
        datr=_datr(obj, modu, ctx),
        data=data,
        imme=imme,
        tmst=tmst,
        rfch=optional_field(obj, "rfch", int, ctx) or 0,
        powe=14 if powe is None else powe,
        modu=modu,
        codr=optional_field(obj, "codr", str, ctx),
        ipol=bool(optional_field(obj, "ipol", bool, ctx)),
    )


def json_bytes(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def _b64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def without_none(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if v is not None}


def rx_packet_json(p: RxPacket) -> dict:
    return without_none(
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
    return without_none(
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

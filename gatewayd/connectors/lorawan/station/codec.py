"""LoRa Basics Station, LNS side: the messages of discovery and of the data connection. Pure.

Text frames in, typed messages out (`parse_discovery`, `parse_message`); replies built as text
(`discovery_reply`, `router_config`, `dnmsg`, `timesync_reply`). Uplinks (`jreq`, `updf`,
`propdf`) are rebuilt into the PHYPayload the device sent, so that the frame goes through the
same checks as one heard by a packet forwarder. Every bad input raises `StationError` with a
short reason code (a metrics label) and a message.

Field facts: `DevAddr` and `MIC` arrive as signed 32-bit integers of the little-endian bytes on
air; EUIs as "00-11-22-..." (big-endian); `FPort` -1 means no port; `Freq` in Hz; `xtime` is the
station's 64-bit time of the uplink, to be copied into the answer together with `rctx`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

import orjson

GPS_EPOCH_UNIX = 315_964_800  # 1980-01-06T00:00:00Z
GPS_LEAP_SECONDS = 18  # GPS - UTC since 2017-01-01 (no leap second announced since)
MAX_PDU = 255
PLACEHOLDER_DEV_EUI = "01-01-01-01-01-01-01-01"  # a non-zero DevEui makes the station report dntxed


class StationError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# -- identifiers -----------------------------------------------------------------------------------
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_EUI_BYTES = re.compile(r"[0-9a-fA-F]{2}([-:][0-9a-fA-F]{2}){7}")
_ID6_GROUP = re.compile(r"[0-9a-fA-F]{1,4}")


def parse_eui(value: Any, what: str = "EUI") -> int:
    """A station identifier as a 64-bit integer: an integer, 16 hex digits, "xx-xx-..", "xx:xx:.."
    (8 bytes) or ID6 ("b827:ebff:fe61:2a0d", "::1", groups of 16 bits with one "::" allowed)."""
    if isinstance(value, bool):
        raise StationError("bad_eui", f"{what} must be a string or an integer, got a boolean")
    if isinstance(value, int):
        if not 0 <= value < 1 << 64:
            raise StationError("bad_eui", f"{what} {value} is not a 64-bit unsigned integer")
        return value
    if not isinstance(value, str) or len(value) > 40:
        raise StationError("bad_eui", f"{what} must be a string or an integer")
    text = value.strip()
    if _HEX16.fullmatch(text) or _EUI_BYTES.fullmatch(text):
        return int(text.replace("-", "").replace(":", ""), 16)
    if ":" in text:
        return _parse_id6(text, what)
    raise StationError("bad_eui", f"{what} {value[:40]!r} is not an EUI")


def _parse_id6(text: str, what: str) -> int:
    if text.count("::") > 1:
        raise StationError("bad_eui", f"{what} {text!r}: '::' may appear once")
    if "::" in text:
        head, tail = text.split("::")
        left = head.split(":") if head else []
        right = tail.split(":") if tail else []
        if len(left) + len(right) > 3:
            raise StationError("bad_eui", f"{what} {text!r} has too many groups")
        groups = left + ["0"] * (4 - len(left) - len(right)) + right
    else:
        groups = text.split(":")
        if len(groups) != 4:
            raise StationError("bad_eui", f"{what} {text!r} is not ID6 (four groups of 16 bits)")
    if not all(_ID6_GROUP.fullmatch(g) for g in groups):
        raise StationError("bad_eui", f"{what} {text!r} is not ID6 (hex groups of 1 to 4 digits)")
    out = 0
    for group in groups:
        out = out << 16 | int(group, 16)
    return out


def eui_hex(eui: int) -> str:
    return f"{eui:016x}"


def id6(eui: int) -> str:
    return ":".join(f"{(eui >> shift) & 0xFFFF:x}" for shift in (48, 32, 16, 0))


def eui_dashed(eui_hex_text: str) -> str:
    return "-".join(eui_hex_text[i:i + 2] for i in range(0, 16, 2)).upper()


# -- discovery ---------------------------------------------------------------------------------------
def _load_object(text: str | bytes, limit: int) -> dict[str, Any]:
    if isinstance(text, str):
        text = text.encode()
    if len(text) > limit:
        raise StationError("too_big", f"message of {len(text)} bytes; the limit is {limit}")
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise StationError("bad_json", f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(obj, dict):
        raise StationError("bad_json", "a message is a JSON object")
    return obj


def parse_discovery(text: str | bytes, limit: int = 4096) -> int:
    """The router EUI of a discovery query `{"router": ID}`."""
    obj = _load_object(text, limit)
    if "router" not in obj:
        raise StationError("missing", "the discovery query has no 'router'")
    return parse_eui(obj["router"], "router")


def discovery_reply(router: int, muxs: int, uri: str) -> str:
    return orjson.dumps({"router": id6(router), "muxs": id6(muxs), "uri": uri}).decode()


def discovery_error(router: Any, message: str) -> str:
    shown = id6(router) if isinstance(router, int) else router
    return orjson.dumps({"router": shown, "error": message}).decode()


# -- station -> LNS ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Version:
    station: str
    firmware: str
    package: str
    model: str
    protocol: int
    features: str


@dataclass(frozen=True, slots=True)
class Uplink:
    """One received frame: the rebuilt PHYPayload and its radio data."""

    msgtype: str  # jreq | updf | propdf
    phy: bytes
    dr: int
    freq: int  # Hz
    rctx: int
    xtime: int
    gpstime: int
    rssi: float
    snr: float | None
    rxtime: float | None


@dataclass(frozen=True, slots=True)
class DnTxed:
    diid: int
    dev_eui: str  # 16 lower-case hex digits
    dr: int | None
    freq: int | None
    xtime: int | None
    txtime: float | None


@dataclass(frozen=True, slots=True)
class TimeSync:
    txtime: float


@dataclass(frozen=True, slots=True)
class Unknown:
    msgtype: str


_REQUIRED = object()


def _int(obj: dict[str, Any], key: str, lo: int, hi: int, default: Any = _REQUIRED) -> int:
    value = obj.get(key, _REQUIRED)
    if type(value) is int and lo <= value <= hi:  # the usual case, checked first
        return value
    if value is _REQUIRED:
        if default is _REQUIRED:
            raise StationError("missing", f"'{key}' is missing")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise StationError("bad_field", f"'{key}' must be an integer")
    raise StationError("bad_field", f"'{key}' {value} is outside {lo}..{hi}")


def _number(obj: dict[str, Any], key: str, default: Any = None) -> float | None:
    value = obj.get(key, default)
    if type(value) is float and value == value:
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise StationError("bad_field", f"'{key}' must be a number")
    return float(value)


def _hex(obj: dict[str, Any], key: str, max_bytes: int) -> bytes:
    value = obj.get(key, "")
    if not isinstance(value, str) or len(value) > 2 * max_bytes:
        raise StationError("bad_field", f"'{key}' must be a hex string of at most {max_bytes} bytes")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise StationError("bad_field", f"'{key}' is not hex") from None


def _eui_le(obj: dict[str, Any], *keys: str) -> bytes:
    for key in keys:
        if key in obj:
            return parse_eui(obj[key], key).to_bytes(8, "little")
    raise StationError("missing", f"'{keys[0]}' is missing")


_I32 = (-(1 << 31), (1 << 31) - 1)
_LE_I32 = struct.Struct("<i")


def _phy_of_updf(m: dict[str, Any]) -> bytes:
    mhdr = _int(m, "MHdr", 0, 255)
    f_ctrl = _int(m, "FCtrl", 0, 255)
    f_opts = _hex(m, "FOpts", 15)
    if f_ctrl & 0x0F != len(f_opts):
        raise StationError("bad_field", f"FCtrl says {f_ctrl & 0x0F} bytes of FOpts, FOpts has {len(f_opts)}")
    port = _int(m, "FPort", -1, 255)
    payload = _hex(m, "FRMPayload", MAX_PDU)
    if port < 0 and payload:
        raise StationError("bad_field", "FRMPayload without FPort")
    head = struct.pack("<BiBH", mhdr, _int(m, "DevAddr", *_I32), f_ctrl, _int(m, "FCnt", 0, 0xFFFF))
    body = bytes((port,)) + payload if port >= 0 else b""
    phy = head + f_opts + body + _LE_I32.pack(_int(m, "MIC", *_I32))
    if len(phy) > MAX_PDU:
        raise StationError("bad_field", f"the frame would be {len(phy)} bytes")
    return phy


def _phy_of_jreq(m: dict[str, Any]) -> bytes:
    return (bytes((_int(m, "MHdr", 0, 255),)) + _eui_le(m, "JoinEui", "JoinEUI") + _eui_le(m, "DevEui", "DevEUI")
            + _int(m, "DevNonce", 0, 0xFFFF).to_bytes(2, "little") + _LE_I32.pack(_int(m, "MIC", *_I32)))


def _phy_of_propdf(m: dict[str, Any]) -> bytes:
    phy = _hex(m, "FRMPayload", MAX_PDU)
    if not phy:
        raise StationError("bad_field", "propdf without FRMPayload")
    return phy


_REBUILD = {"updf": _phy_of_updf, "jreq": _phy_of_jreq, "propdf": _phy_of_propdf}
_U64 = (1 << 64) - 1


def _uplink(msgtype: str, m: dict[str, Any]) -> Uplink:
    phy = _REBUILD[msgtype](m)
    info = m.get("upinfo")
    if not isinstance(info, dict):
        raise StationError("missing", "'upinfo' is missing")
    return Uplink(
        msgtype=msgtype, phy=phy, dr=_int(m, "DR", 0, 15), freq=_int(m, "Freq", 1, 10_000_000_000),
        rctx=_int(info, "rctx", -(1 << 63), _U64, 0), xtime=_int(info, "xtime", -(1 << 63), _U64),
        gpstime=_int(info, "gpstime", -(1 << 63), _U64, 0), rssi=_number(info, "rssi", 0.0),
        snr=_number(info, "snr"), rxtime=_number(info, "rxtime"),
    )


def _dntxed(m: dict[str, Any]) -> DnTxed:
    dev_eui = parse_eui(m.get("DevEui", m.get("DevEUI", 0)), "DevEui")
    return DnTxed(diid=_int(m, "diid", -(1 << 63), _U64), dev_eui=eui_hex(dev_eui),
                  dr=_int(m, "DR", 0, 15, None), freq=_int(m, "Freq", 0, 10_000_000_000, None),
                  xtime=_int(m, "xtime", -(1 << 63), _U64, None), txtime=_number(m, "txtime"))


def _text(m: dict[str, Any], key: str) -> str:
    value = m.get(key, "")
    return value[:120] if isinstance(value, str) else ""


def _version(m: dict[str, Any]) -> Version:
    return Version(station=_text(m, "station"), firmware=_text(m, "firmware"), package=_text(m, "package"),
                   model=_text(m, "model"), protocol=_int(m, "protocol", 0, 1000, 0), features=_text(m, "features"))


def _timesync(m: dict[str, Any]) -> TimeSync:
    txtime = _number(m, "txtime")
    if txtime is None:
        raise StationError("missing", "'txtime' is missing")
    return TimeSync(txtime)


_PARSERS = {"version": _version, "dntxed": _dntxed, "timesync": _timesync}


def parse_message(text: str | bytes, limit: int = 16384) -> Version | Uplink | DnTxed | TimeSync | Unknown:
    """One frame of the data connection."""
    m = _load_object(text, limit)
    msgtype = m.get("msgtype")
    if not isinstance(msgtype, str):
        raise StationError("missing", "'msgtype' is missing")
    if msgtype in _REBUILD:
        return _uplink(msgtype, m)
    parser = _PARSERS.get(msgtype)
    if parser is None:
        return Unknown(msgtype[:32])
    return parser(m)


# -- LNS -> station ------------------------------------------------------------------------------------
def dnmsg(*, dev_eui: str, diid: int, pdu: bytes, rx_delay: int, xtime: int, rctx: int,
          rx1: tuple[int, int] | None, rx2: tuple[int, int] | None, priority: int, mux_time: float) -> str:
    """A class A downlink. `rx1`/`rx2`: (DR, Hz) of the windows the station may use (at least one);
    `xtime` is the UPLINK's: the station adds RxDelay (RX1) or RxDelay + 1 s (RX2) itself."""
    if rx1 is None and rx2 is None:
        raise ValueError("a downlink needs a receive window")
    if len(pdu) > MAX_PDU:
        raise ValueError(f"a PDU is at most {MAX_PDU} bytes")
    msg: dict[str, Any] = {"msgtype": "dnmsg", "DevEui": dev_eui, "dC": 0, "diid": diid, "pdu": pdu.hex(),
                           "RxDelay": rx_delay, "priority": priority, "xtime": xtime, "rctx": rctx}
    if rx1 is not None:
        msg["RX1DR"], msg["RX1Freq"] = rx1
    if rx2 is not None:
        msg["RX2DR"], msg["RX2Freq"] = rx2
    msg["MuxTime"] = mux_time
    return orjson.dumps(msg).decode()


def gps_time_us(unix_seconds: float) -> int:
    """Microseconds since the GPS epoch for a UTC (Unix) time."""
    return round((unix_seconds - GPS_EPOCH_UNIX + GPS_LEAP_SECONDS) * 1_000_000)


def timesync_reply(txtime: float, unix_now: float) -> str:
    return orjson.dumps({"msgtype": "timesync", "txtime": txtime, "gpstime": gps_time_us(unix_now),
                         "MuxTime": unix_now}).decode()

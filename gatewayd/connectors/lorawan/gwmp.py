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

from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any, NamedTuple

from ...errors import ProtocolError
from .frames import hex_to_eui
from .packets import (GatewayStat, RxPacket, TxPacket, describe_type, json_bytes, json_object, optional_field,
                      read_gateway_stat, read_rx_packet, read_tx_packet, read_usual_rx_packet, rx_packet_json,
                      tx_packet_json, without_none)

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
    doc = json_object(payload, "PUSH_DATA")
    errors: list[str] = []
    rxpk: list[RxPacket] = []
    entries = doc.get("rxpk", [])
    if not isinstance(entries, list):
        raise ProtocolError("invalid", f"rxpk must be an array, got {describe_type(entries)}")
    for i, entry in enumerate(entries):
        packet = read_usual_rx_packet(entry)
        if packet is None:
            try:
                packet = read_rx_packet(entry, f"rxpk[{i}]")
            except ProtocolError as exc:
                errors.append(exc.message)
                continue
        rxpk.append(packet)
    bad_rxpk = len(errors)
    stat = None
    if "stat" in doc:
        try:
            stat = read_gateway_stat(doc["stat"])
        except ProtocolError as exc:
            errors.append(exc.message)
    return PushData(version, token, gateway_eui, rxpk, stat, bad_rxpk, tuple(errors))


def _parse_tx_ack(version: int, token: int, gateway_eui: str, payload: bytes) -> TxAck:
    if not payload.strip():
        return TxAck(version, token, gateway_eui)
    doc = json_object(payload, "TX_ACK")
    ack = doc.get("txpk_ack", {})
    if not isinstance(ack, dict):
        raise ProtocolError("invalid", f"txpk_ack must be an object, got {describe_type(ack)}")
    error = optional_field(ack, "error", str, "txpk_ack") or "NONE"
    warn = optional_field(ack, "warn", str, "txpk_ack")
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
        doc = json_object(data[4:].rstrip(b"\x00"), "PULL_RESP")
        if "txpk" not in doc:
            raise ProtocolError("invalid", "PULL_RESP lacks txpk")
        return PullResp(version, token, read_tx_packet(doc["txpk"]))
    raise ProtocolError("bad_id", f"packet identifier 0x{ident:02x} is not sent by a server")


def _header(version: int, token: int, ident: PacketId) -> bytes:
    if version not in VERSIONS:
        raise ProtocolError("bad_version", f"protocol version {version!r} is not 1 or 2")
    if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token <= 0xFFFF:
        raise ProtocolError("bad_token", f"token must be in 0..65535, got {token!r}")
    return bytes((version,)) + token.to_bytes(2, "big") + bytes((ident,))


def push_ack(version: int, token: int) -> bytes:
    return _header(version, token, PacketId.PUSH_ACK)


def pull_ack(version: int, token: int) -> bytes:
    return _header(version, token, PacketId.PULL_ACK)


def pull_resp(version: int, token: int, txpk: TxPacket) -> bytes:
    """Version 1 gateways ignore the token; pass 0 for them."""
    return _header(version, token, PacketId.PULL_RESP) + json_bytes({"txpk": tx_packet_json(txpk)})


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
        doc["stat"] = without_none(asdict(stat))
    return _header(version, token, PacketId.PUSH_DATA) + hex_to_eui(gateway_eui) + json_bytes(doc)


def pull_data(version: int, token: int, gateway_eui: str) -> bytes:
    return _header(version, token, PacketId.PULL_DATA) + hex_to_eui(gateway_eui)


def tx_ack(
    version: int, token: int, gateway_eui: str, error: str | None = "NONE", *, nul: bool = False
) -> bytes:
    """`error=None` sends no JSON at all (older gateways on success); `nul` appends a 0 byte."""
    body = b"" if error is None else json_bytes({"txpk_ack": {"error": error}})
    return (
        _header(version, token, PacketId.TX_ACK)
        + hex_to_eui(gateway_eui)
        + body
        + (b"\x00" if nul else b"")
    )

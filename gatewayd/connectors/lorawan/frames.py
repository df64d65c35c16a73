"""LoRaWAN 1.0.x PHYPayload codec (class A): frames parsed and built; MICs, encryption and keys in crypto.py.

Multi-byte fields are little-endian on air. EUIs, DevAddr and NetID are handled here as they are
printed (big-endian), so all byte-order conversion happens in this module.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import IntEnum
from string import hexdigits

from ...errors import ProtocolError
from .crypto import (KEY_LEN, MAX_PHY_PAYLOAD, MIC_LEN, aes_cmac, aes_ecb, check_key, check_uint,
                     crypt_frm_payload, data_mic, join_request_mic)

JOIN_REQUEST_LEN = 23  # MHDR | AppEUI(8) | DevEUI(8) | DevNonce(2) | MIC(4)
DATA_FRAME_MIN_LEN = 12  # MHDR | DevAddr(4) | FCtrl | FCnt(2) | MIC(4)
CFLIST_LEN = 16
MAX_FOPTS_LEN = 15
MAX_FCNT_GAP = 16384  # LoRaWAN 1.0 MAX_FCNT_GAP, for the caller's counter policy
LORAWAN_R1 = 0  # MHDR major version

_ADR = 0x80
_ADR_ACK_REQ = 0x40
_ACK = 0x20
_F_PENDING = 0x10
_FOPTS_LEN_MASK = 0x0F

_U16 = 0xFFFF
_U32 = 0xFFFF_FFFF


class MType(IntEnum):
    JOIN_REQUEST = 0
    JOIN_ACCEPT = 1
    UNCONFIRMED_DATA_UP = 2
    UNCONFIRMED_DATA_DOWN = 3
    CONFIRMED_DATA_UP = 4
    CONFIRMED_DATA_DOWN = 5
    RFU = 6
    PROPRIETARY = 7

    @property
    def label(self) -> str:
        """Lower-case name, e.g. "unconfirmed_data_up"."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> MType:
        try:
            return cls[str(label).upper()]
        except KeyError:
            raise ProtocolError("bad_mtype", f"unknown MType name {label!r}") from None

    @property
    def is_data(self) -> bool:
        return MType.UNCONFIRMED_DATA_UP <= self <= MType.CONFIRMED_DATA_DOWN

    @property
    def is_uplink(self) -> bool:
        return self in (MType.JOIN_REQUEST, MType.UNCONFIRMED_DATA_UP, MType.CONFIRMED_DATA_UP)

    @property
    def is_confirmed(self) -> bool:
        return self in (MType.CONFIRMED_DATA_UP, MType.CONFIRMED_DATA_DOWN)


@dataclass(frozen=True)
class DataFrame:
    """A parsed data frame; `frm_payload` is still encrypted (see `decrypt_payload`).

    The FCtrl bits are reported as they are on air whatever the direction: on a 1.0.x downlink
    the `adr_ack_req` bit is RFU, on a 1.0.0/1.0.1 uplink `f_pending` is RFU.
    """

    mtype: MType
    dev_addr: int
    adr: bool
    adr_ack_req: bool
    ack: bool
    f_pending: bool
    f_cnt16: int
    f_opts: bytes
    f_port: int | None
    frm_payload: bytes
    mic: bytes
    raw: bytes

    @property
    def uplink(self) -> bool:
        return self.mtype.is_uplink

    @property
    def confirmed(self) -> bool:
        return self.mtype.is_confirmed

    @property
    def dev_addr_hex(self) -> str:
        return dev_addr_hex(self.dev_addr)


@dataclass(frozen=True)
class JoinRequest:
    app_eui: str
    dev_eui: str
    dev_nonce: int
    mic: bytes
    raw: bytes

    @property
    def mtype(self) -> MType:
        return MType.JOIN_REQUEST

    @property
    def uplink(self) -> bool:
        return True


# --------------------------------------------------------------------------------------------
# Parsing

_MTYPES = tuple(MType)  # by value: a tuple index instead of the enum's lookup on every frame


def parse_phy(data: bytes) -> DataFrame | JoinRequest:
    """Parse an uplink or downlink PHYPayload. Join-accepts (encrypted, only ever sent by a
    network server) and proprietary or RFU frames are refused with "bad_mtype"."""
    data = bytes(data)
    if not data:
        raise ProtocolError("short", "PHYPayload is empty")
    if len(data) > MAX_PHY_PAYLOAD:
        raise ProtocolError(
            "bad_length", f"PHYPayload is {len(data)} bytes; the maximum is {MAX_PHY_PAYLOAD}"
        )
    major = data[0] & 0x03
    if major != LORAWAN_R1:
        raise ProtocolError(
            "bad_version", f"MHDR major version is {major}; only LoRaWAN R1 (0) is supported"
        )
    mtype = _MTYPES[data[0] >> 5]
    if mtype is MType.JOIN_REQUEST:
        return _parse_join_request(data)
    if mtype.is_data:
        return _parse_data_frame(mtype, data)
    if mtype is MType.JOIN_ACCEPT:
        raise ProtocolError(
            "bad_mtype", "join_accept frames are sent by the network server, not parsed from it"
        )
    raise ProtocolError("bad_mtype", f"{mtype.label} frames are not supported")


def _parse_join_request(data: bytes) -> JoinRequest:
    if len(data) != JOIN_REQUEST_LEN:
        code = "short" if len(data) < JOIN_REQUEST_LEN else "bad_length"
        raise ProtocolError(
            code, f"join_request is {len(data)} bytes; it must be exactly {JOIN_REQUEST_LEN}"
        )
    return JoinRequest(
        app_eui=data[1:9][::-1].hex(),
        dev_eui=data[9:17][::-1].hex(),
        dev_nonce=int.from_bytes(data[17:19], "little"),
        mic=data[19:],
        raw=data,
    )


def _parse_data_frame(mtype: MType, data: bytes) -> DataFrame:
    if len(data) < DATA_FRAME_MIN_LEN:
        raise ProtocolError(
            "short",
            f"{mtype.label} frame is {len(data)} bytes; at least {DATA_FRAME_MIN_LEN} are needed "
            "(MHDR, DevAddr, FCtrl, FCnt, MIC)",
        )
    f_ctrl = data[5]
    f_opts_len = f_ctrl & _FOPTS_LEN_MASK
    fhdr_end = 8 + f_opts_len
    mic_start = len(data) - MIC_LEN
    if fhdr_end > mic_start:
        raise ProtocolError(
            "short",
            f"FOptsLen is {f_opts_len} but only {mic_start - 8} bytes lie between FCnt and the MIC",
        )
    f_opts = data[8:fhdr_end]
    if fhdr_end < mic_start:
        f_port: int | None = data[fhdr_end]
        frm_payload = data[fhdr_end + 1 : mic_start]
    else:
        f_port, frm_payload = None, b""
    if f_port == 0 and f_opts:
        raise ProtocolError(
            "bad_fopts", "MAC commands in both FOpts and an FPort 0 payload are not allowed"
        )
    # Filled directly, as the frozen dataclass's __init__ would with one object.__setattr__ per
    # field: that was most of the cost of reading a frame.
    frame = object.__new__(DataFrame)
    frame.__dict__.update(
        mtype=mtype,
        dev_addr=int.from_bytes(data[1:5], "little"),
        adr=bool(f_ctrl & _ADR),
        adr_ack_req=bool(f_ctrl & _ADR_ACK_REQ),
        ack=bool(f_ctrl & _ACK),
        f_pending=bool(f_ctrl & _F_PENDING),
        f_cnt16=int.from_bytes(data[6:8], "little"),
        f_opts=f_opts,
        f_port=f_port,
        frm_payload=frm_payload,
        mic=data[mic_start:],
        raw=data,
    )
    return frame


def verify_data_mic(frame: DataFrame, nwk_s_key: bytes, fcnt32: int) -> bool:
    expected = data_mic(nwk_s_key, frame.raw[:-MIC_LEN], frame.dev_addr, fcnt32, frame.uplink)
    return hmac.compare_digest(expected, frame.mic)


def decrypt_payload(frame: DataFrame, nwk_s_key: bytes, app_s_key: bytes, fcnt32: int) -> bytes:
    """Plain FRMPayload: NwkSKey for FPort 0 (MAC commands), AppSKey otherwise."""
    if frame.f_port is None:
        return b""
    key = nwk_s_key if frame.f_port == 0 else app_s_key
    return crypt_frm_payload(key, frame.dev_addr, fcnt32, frame.uplink, frame.frm_payload)


def reconstruct_fcnt(fcnt16: int, expected32: int) -> int:
    """Rebuild the 32-bit frame counter from the 16 bits on air.

    `expected32` is the next counter the receiver expects: last accepted + 1, or 0 for a fresh
    session (so 0..2**32).

    Rule: if `fcnt16` equals the low 16 bits of `expected32 - 1` (and `expected32 > 0`), the frame
    repeats the last accepted counter and `expected32 - 1` is returned, so a retransmission is
    recognisable even across the 0xFFFF -> 0x10000 wrap. Otherwise the result is the smallest
    counter >= `expected32` whose low 16 bits are `fcnt16`. The result therefore lies in
    `expected32 - 1 .. expected32 + 0xFFFE`; a counter that went back by more than one comes out
    as a jump of almost 2**16 for the caller's gap policy (MAX_FCNT_GAP) and the MIC to refuse.
    Raises "fcnt_exhausted" when that counter no longer fits in 32 bits (the device must rejoin).
    """
    check_uint(fcnt16, 16, "bad_fcnt", "FCnt")
    valid = isinstance(expected32, int) and not isinstance(expected32, bool)
    if not valid or not 0 <= expected32 <= 1 << 32:
        raise ProtocolError("bad_fcnt", f"expected FCnt must be in 0..2**32, got {expected32!r}")
    if expected32 > 0 and fcnt16 == (expected32 - 1) & _U16:
        return expected32 - 1
    full = expected32 + ((fcnt16 - expected32) & _U16)
    if full > _U32:
        raise ProtocolError(
            "fcnt_exhausted", f"FCnt {fcnt16} after {expected32 - 1} overflows the 32-bit counter"
        )
    return full


def build_data_frame(
    mtype: MType | int,
    dev_addr: int,
    fcnt32: int,
    nwk_s_key: bytes,
    app_s_key: bytes,
    f_port: int | None = None,
    payload: bytes = b"",
    adr: bool = False,
    ack: bool = False,
    f_pending: bool = False,
    adr_ack_req: bool = False,
    f_opts: bytes = b"",
) -> bytes:
    """On-air bytes of a data frame: FRMPayload encrypted, MIC appended. Any data MType."""
    try:
        mtype = MType(mtype)
    except ValueError:
        raise ProtocolError("bad_mtype", f"{mtype!r} is not an MType") from None
    if not mtype.is_data:
        raise ProtocolError("bad_mtype", f"{mtype.label} is not a data frame type")
    check_uint(dev_addr, 32, "bad_dev_addr", "DevAddr")
    check_uint(fcnt32, 32, "bad_fcnt", "FCnt32")
    if len(f_opts) > MAX_FOPTS_LEN:
        raise ProtocolError("bad_fopts", f"FOpts is {len(f_opts)} bytes; the maximum is 15")
    if f_port is None:
        if payload:
            raise ProtocolError("bad_fport", "a non-empty FRMPayload needs an FPort")
    else:
        check_uint(f_port, 8, "bad_fport", "FPort")
        if f_port == 0 and f_opts:
            raise ProtocolError(
                "bad_fopts", "MAC commands in both FOpts and an FPort 0 payload are not allowed"
            )
    size = DATA_FRAME_MIN_LEN + len(f_opts) + (0 if f_port is None else 1 + len(payload))
    if size > MAX_PHY_PAYLOAD:
        raise ProtocolError("bad_length", f"frame would be {size} bytes; the maximum is 255")

    f_ctrl = (
        (_ADR if adr else 0)
        | (_ADR_ACK_REQ if adr_ack_req else 0)
        | (_ACK if ack else 0)
        | (_F_PENDING if f_pending else 0)
        | len(f_opts)
    )
    body = bytearray((mtype << 5 | LORAWAN_R1,))
    body += dev_addr.to_bytes(4, "little")
    body.append(f_ctrl)
    body += (fcnt32 & _U16).to_bytes(2, "little")
    body += f_opts
    if f_port is not None:
        key = nwk_s_key if f_port == 0 else app_s_key
        body.append(f_port)
        body += crypt_frm_payload(key, dev_addr, fcnt32, mtype.is_uplink, bytes(payload))
    return bytes(body) + data_mic(nwk_s_key, bytes(body), dev_addr, fcnt32, mtype.is_uplink)


def verify_join_request(jr: JoinRequest, app_key: bytes) -> bool:
    return hmac.compare_digest(join_request_mic(app_key, jr.raw[:-MIC_LEN]), jr.mic)


def build_join_request(app_key: bytes, app_eui: str, dev_eui: str, dev_nonce: int) -> bytes:
    """On-air join-request (what a device sends)."""
    check_uint(dev_nonce, 16, "bad_nonce", "DevNonce")
    body = (
        bytes((MType.JOIN_REQUEST << 5 | LORAWAN_R1,))
        + hex_to_eui(app_eui)[::-1]
        + hex_to_eui(dev_eui)[::-1]
        + dev_nonce.to_bytes(2, "little")
    )
    return body + join_request_mic(app_key, body)


def build_join_accept(
    app_key: bytes,
    app_nonce: int,
    net_id: int,
    dev_addr: int,
    dl_settings: int = 0,
    rx_delay: int = 1,
    cflist: bytes | None = None,
) -> bytes:
    """On-air join-accept: MIC over the plaintext, then AES-ECB *decrypt* of all after MHDR."""
    app_key = check_key(app_key, "AppKey")
    check_uint(app_nonce, 24, "bad_nonce", "AppNonce")
    check_uint(net_id, 24, "bad_net_id", "NetID")
    check_uint(dev_addr, 32, "bad_dev_addr", "DevAddr")
    check_uint(dl_settings, 8, "bad_dl_settings", "DLSettings")
    check_uint(rx_delay, 8, "bad_rx_delay", "RxDelay")
    if cflist is not None and len(cflist) != CFLIST_LEN:
        raise ProtocolError("bad_length", f"CFList is {len(cflist)} bytes; it must be 16")
    mhdr = bytes((MType.JOIN_ACCEPT << 5 | LORAWAN_R1,))
    fields = (
        app_nonce.to_bytes(3, "little")
        + net_id.to_bytes(3, "little")
        + dev_addr.to_bytes(4, "little")
        + bytes((dl_settings, rx_delay))
        + (bytes(cflist) if cflist is not None else b"")
    )
    mic = aes_cmac(app_key, mhdr + fields)[:MIC_LEN]
    return mhdr + aes_ecb(app_key, fields + mic, decrypt=True)


def decode_join_accept(app_key: bytes, phy: bytes) -> dict:
    """What a device does with a join-accept: encrypt to read it, check the MIC.

    Returns app_nonce, net_id, dev_addr (ints), dl_settings with its rx1_dr_offset and rx2_dr,
    rx_delay, cflist (bytes or None) and mic.
    """
    app_key = check_key(app_key, "AppKey")
    phy = bytes(phy)
    if not phy:
        raise ProtocolError("short", "join_accept is empty")
    if phy[0] >> 5 != MType.JOIN_ACCEPT:
        raise ProtocolError("bad_mtype", f"{MType(phy[0] >> 5).label} is not a join_accept")
    if len(phy) not in (17, 33):
        raise ProtocolError(
            "bad_length", f"join_accept is {len(phy)} bytes; it must be 17, or 33 with a CFList"
        )
    plain = phy[:1] + aes_ecb(app_key, phy[1:])
    body, mic = plain[:-MIC_LEN], plain[-MIC_LEN:]
    if not hmac.compare_digest(aes_cmac(app_key, body)[:MIC_LEN], mic):
        raise ProtocolError("bad_mic", "join_accept MIC does not match (wrong AppKey?)")
    dl_settings = body[11]
    return {
        "app_nonce": int.from_bytes(body[1:4], "little"),
        "net_id": int.from_bytes(body[4:7], "little"),
        "dev_addr": int.from_bytes(body[7:11], "little"),
        "dl_settings": dl_settings,
        "rx1_dr_offset": (dl_settings >> 4) & 0x07,
        "rx2_dr": dl_settings & 0x0F,
        "rx_delay": body[12],
        "cflist": body[13:] or None,
        "mic": mic,
    }


# --------------------------------------------------------------------------------------------
# Printed forms


def _parse_hex(text: str, nbytes: int, code: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise ProtocolError(code, f"{what} must be a hex string, got {type(text).__name__}")
    digits = text.strip().replace(":", "").replace("-", "")
    if len(digits) != 2 * nbytes or not all(c in hexdigits for c in digits):
        raise ProtocolError(
            code, f"{what} must be {2 * nbytes} hex digits ({nbytes} bytes), got {text!r}"
        )
    return bytes.fromhex(digits)


def eui_to_hex(b: bytes) -> str:
    """8 bytes in printed (big-endian) order -> 16 lower-case hex digits."""
    if not isinstance(b, (bytes, bytearray, memoryview)) or len(b) != 8:
        got = f"{len(b)} bytes" if isinstance(b, (bytes, bytearray, memoryview)) else repr(b)
        raise ProtocolError("bad_eui", f"an EUI is 8 bytes, got {got}")
    return bytes(b).hex()


def hex_to_eui(s: str) -> bytes:
    """16 hex digits, any case, ':' or '-' separators allowed -> 8 bytes in printed order."""
    return _parse_hex(s, 8, "bad_eui", "EUI")


def dev_addr_hex(dev_addr: int) -> str:
    return f"{check_uint(dev_addr, 32, 'bad_dev_addr', 'DevAddr'):08x}"


def parse_dev_addr(s: str) -> int:
    return int.from_bytes(_parse_hex(s, 4, "bad_dev_addr", "DevAddr"), "big")


def parse_key(hex_str: str) -> bytes:
    """A printed AES-128 key (32 hex digits, any case) -> 16 bytes."""
    return _parse_hex(hex_str, KEY_LEN, "bad_key", "key")

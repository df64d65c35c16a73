"""LoRaWAN 1.0.x crypto: AES-CMAC message integrity codes, FRMPayload encryption, session keys
derived at a join. Keys are 16-byte values; ciphers are cached per key (CRYPTO_CACHE)."""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import TYPE_CHECKING

from ...errors import ProtocolError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import cmac


MAX_PHY_PAYLOAD = 255
MIC_LEN = 4
KEY_LEN = 16


def check_key(key: bytes, name: str) -> bytes:
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise ProtocolError("bad_key", f"{name} must be bytes, got {type(key).__name__}")
    if len(key) != KEY_LEN:
        raise ProtocolError("bad_key", f"{name} must be {KEY_LEN} bytes, got {len(key)}")
    return bytes(key)


def check_uint(value: int, bits: int, code: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        limit = (1 << bits) - 1
        raise ProtocolError(code, f"{name} must be an integer in 0..{limit}, got {value!r}")
    return value


# Expanding an AES key costs far more than encrypting a frame, and every uplink needs the same
# two or three keys again: the expanded forms are kept per key. ECB has no state from one call to
# the next, so one encryptor serves every whole-block input; a CMAC is copied from its keyed
# template. A few thousand devices' keys fit; beyond that the least recently used are rebuilt.
CRYPTO_CACHE = 8192


def _ecb(key: bytes):
    """An AES-ECB cipher. cryptography (~6 MiB resident) is imported on first use: a daemon
    without LoRaWAN devices never loads it."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key), modes.ECB())


@lru_cache(maxsize=CRYPTO_CACHE)
def _ecb_encryptor(key: bytes):
    return _ecb(key).encryptor()


@lru_cache(maxsize=CRYPTO_CACHE)
def _cmac_template(key: bytes) -> cmac.CMAC:
    from cryptography.hazmat.primitives import cmac
    from cryptography.hazmat.primitives.ciphers import algorithms

    return cmac.CMAC(algorithms.AES(key))


def aes_ecb(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    if decrypt:
        ctx = _ecb(key).decryptor()  # join-accepts only: rare
        return ctx.update(data) + ctx.finalize()
    if len(data) % 16:
        raise ValueError("The length of the provided data is not a multiple of the block length.")
    return _ecb_encryptor(bytes(key)).update(data)  # whole blocks only, so nothing is held back


def aes_cmac(key: bytes, message: bytes) -> bytes:
    """Full 16-byte AES-128-CMAC (RFC 4493)."""
    mac = _cmac_template(check_key(key, "CMAC key")).copy()
    mac.update(bytes(message))
    return mac.finalize()


_BLOCK = struct.Struct("<B4xBIIxB")


def _block(first: int, dev_addr: int, fcnt32: int, uplink: bool, last: int) -> bytes:
    """The B0 / A_i block: first | 00000000 | dir | DevAddr | FCnt32 | 00 | last."""
    return _BLOCK.pack(first, 0 if uplink else 1, dev_addr, fcnt32, last)


# --------------------------------------------------------------------------------------------
# Data frames


def data_mic(
    nwk_s_key: bytes, raw_without_mic: bytes, dev_addr: int, fcnt32: int, uplink: bool
) -> bytes:
    check_uint(dev_addr, 32, "bad_dev_addr", "DevAddr")
    check_uint(fcnt32, 32, "bad_fcnt", "FCnt32")
    if len(raw_without_mic) > MAX_PHY_PAYLOAD - MIC_LEN:
        raise ProtocolError(
            "bad_length", f"MIC input is {len(raw_without_mic)} bytes; the maximum is 251"
        )
    b0 = _block(0x49, dev_addr, fcnt32, uplink, len(raw_without_mic))
    return aes_cmac(check_key(nwk_s_key, "NwkSKey"), b0 + bytes(raw_without_mic))[:MIC_LEN]


def crypt_frm_payload(key: bytes, dev_addr: int, fcnt32: int, uplink: bool, data: bytes) -> bytes:
    """Encrypt or decrypt an FRMPayload (the same XOR with the AES-ECB keystream)."""
    key = check_key(key, "payload key")
    check_uint(dev_addr, 32, "bad_dev_addr", "DevAddr")
    check_uint(fcnt32, 32, "bad_fcnt", "FCnt32")
    if len(data) > MAX_PHY_PAYLOAD:
        raise ProtocolError("bad_length", f"FRMPayload is {len(data)} bytes; the maximum is 255")
    if not data:
        return b""
    blocks = (len(data) + 15) // 16
    a_blocks = b"".join(_block(0x01, dev_addr, fcnt32, uplink, i) for i in range(1, blocks + 1))
    keystream = aes_ecb(key, a_blocks)[: len(data)]
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(keystream, "big")
    return mixed.to_bytes(len(data), "big")


def join_request_mic(app_key: bytes, raw_without_mic: bytes) -> bytes:
    return aes_cmac(check_key(app_key, "AppKey"), raw_without_mic)[:MIC_LEN]


def derive_session_keys(
    app_key: bytes, app_nonce: int, net_id: int, dev_nonce: int
) -> tuple[bytes, bytes]:
    """(NwkSKey, AppSKey) = AES-ECB(AppKey, 01|02 | AppNonce | NetID | DevNonce | zero pad)."""
    app_key = check_key(app_key, "AppKey")
    check_uint(app_nonce, 24, "bad_nonce", "AppNonce")
    check_uint(net_id, 24, "bad_net_id", "NetID")
    check_uint(dev_nonce, 16, "bad_nonce", "DevNonce")
    tail = (
        app_nonce.to_bytes(3, "little")
        + net_id.to_bytes(3, "little")
        + dev_nonce.to_bytes(2, "little")
        + bytes(7)
    )
    keys = aes_ecb(app_key, b"\x01" + tail + b"\x02" + tail)
    return keys[:16], keys[16:]

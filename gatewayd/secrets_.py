"""Generating, hashing and checking secrets. Nothing here logs or stores a secret in clear."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2 ** 14, 8, 1


def new_token(prefix: str, nbytes: int = 24) -> str:
    """A random credential such as `tok_...` (24 bytes = 192 bits of entropy)."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def new_id(nbytes: int = 4) -> str:
    return secrets.token_hex(nbytes)


def hash_token(token: str) -> str:
    """Fast hash for high-entropy tokens (they cannot be guessed, so no key stretching is needed)."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def check_token(token: str, stored: str) -> bool:
    return hmac.compare_digest(hash_token(token).encode(), stored.encode())


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt)}${b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


KEY_BYTES = 32


def load_or_create_key(path: Path) -> bytes:
    """The random key in `path`, created (mode 0600) when missing or unusable."""
    log = logging.getLogger("gatewayd.secrets")
    try:
        key = path.read_bytes()
        if len(key) == KEY_BYTES:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
                log.warning("%s was readable by others; its mode is now 0600", path)
            return key
        log.warning("%s does not hold a %d-byte key; a new one is made", path, KEY_BYTES)
        path.unlink()
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(KEY_BYTES)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return key


def keyed_digest(key: bytes, purpose: str, text: str) -> str:
    """A salted (keyed) hash of `text` for records that must not hold the text itself: equal
    inputs give equal digests on this installation, and nothing else can be learnt from it."""
    return hmac.new(key, f"{purpose}|{text}".encode(), hashlib.sha256).hexdigest()[:16]

"""Generating, hashing and checking secrets. Nothing here logs or stores a secret in clear."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

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

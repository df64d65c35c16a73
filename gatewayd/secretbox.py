"""Secrets the server must read back (LoRaWAN root and session keys), sealed with AES-256-GCM.

The key is 32 random bytes in `<state_dir>/secret.key` (mode 0600), created on first use. A sealed
token is `sb1.` + base64url(nonce | ciphertext | tag). The optional `context` (e.g.
"lorawan/<DevEUI>/app_key") is authenticated too, so a token copied onto another device or field
does not open. The journal, snapshots and API answers only ever hold tokens; losing secret.key
makes them unreadable, so back it up with the state directory.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .journal.files import fsync_directory

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "secret.key"
KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "sb1."


class SecretBoxError(Exception):
    """A token that does not open (wrong key file, damaged token, wrong context) or a bad key file.
    The message never contains the secret."""


class SecretBox:
    def __init__(self, key_path: str | os.PathLike):
        self.key_path = Path(key_path)
        self._aead: AESGCM | None = None
        self._lock = threading.Lock()

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            with self._lock:
                if self._aead is None:
                    # cryptography (~6 MiB resident) is loaded on first use: a daemon that holds no
                    # sealed secret never needs it.
                    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

                    self._aead = AESGCM(_load_or_create_key(self.key_path))
        return self._aead

    def seal(self, plaintext: bytes, context: str = "") -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher().encrypt(nonce, bytes(plaintext), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, token: str, context: str = "") -> bytes:
        if not isinstance(token, str) or not token.startswith(PREFIX):
            raise SecretBoxError("not a sealed secret")
        body = token[len(PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise SecretBoxError("sealed secret is not valid base64") from None
        if len(raw) < NONCE_BYTES + 16:
            raise SecretBoxError("sealed secret is too short")
        cipher = self._cipher()
        from cryptography.exceptions import InvalidTag

        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise SecretBoxError(f"sealed secret does not open with {self.key_path} "
                                 "(another state directory's key, or damaged)") from None


def _load_or_create_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    key = os.urandom(KEY_BYTES)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(path.parent)
    return key


def _read_key(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        os.chmod(path, 0o600)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SecretBoxError(f"{path} holds {len(key)} bytes; a secret key is {KEY_BYTES} bytes")
    return key


_boxes: dict[Path, SecretBox] = {}


def for_state_dir(state_dir: str | os.PathLike) -> SecretBox:
    """The box of a state directory (one instance per directory, the key read once)."""
    path = (Path(state_dir) / KEY_FILE).resolve()
    box = _boxes.get(path)
    if box is None:
        box = _boxes[path] = SecretBox(path)
    return box

"""WebSocket text frames as a server sends them (RFC 6455 section 5.2): final, unmasked, no
extension bits. Such a frame's bytes do not depend on the connection, so a message that goes to
many clients is encoded once and the same bytes are written to each of them."""

from __future__ import annotations

OPCODE_TEXT_FINAL = 0x81


def text_frame(text: str) -> bytes:
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        header = bytes((OPCODE_TEXT_FINAL, size))
    elif size < 1 << 16:
        header = bytes((OPCODE_TEXT_FINAL, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((OPCODE_TEXT_FINAL, 127)) + size.to_bytes(8, "big")
    return header + payload


class SharedText:
    """One outgoing message for any number of connections: its text, and its frame encoded on
    first use (connections without an extension all write these same bytes)."""

    __slots__ = ("text", "_frame")

    def __init__(self, text: str):
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text)
        return self._frame

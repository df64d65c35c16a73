"""Which dialect a WebSocket connection speaks, fixed once per connection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from .messages import MAX_DOCUMENT_CHARS
from ...errors import ProtocolError
from ..terminals.fields import loads_lenient

Dialect = Literal["json", "xml", "terminal"]

SUBPROTOCOLS = ("gatewayd.json", "gatewayd.xml")


def select_subprotocol(offered: Iterable[str] | None) -> str | None:
    """The first of the client's offered subprotocols that we speak (to echo in the handshake)."""
    for name in offered or ():
        if isinstance(name, str) and name.strip() in SUBPROTOCOLS:
            return name.strip()
    return None


def choose_dialect(
    offered_subprotocols: Iterable[str] | None, first_frame: str | bytes | None
) -> Dialect:
    """A negotiated subprotocol wins. Otherwise the first frame decides: `<` (after whitespace or a
    BOM) is XML; a JSON object with a `cmd` key and no `type` key is an attendance terminal
    (`{"cmd":"reg",...}`); anything else is the JSON dialect, whose decoder reports what is wrong.
    Never raises."""
    chosen = select_subprotocol(offered_subprotocols)
    if chosen is not None:
        return "xml" if chosen == "gatewayd.xml" else "json"
    if first_frame is None:
        return "json"
    if isinstance(first_frame, (bytes, bytearray)):
        text = bytes(first_frame).decode("utf-8", errors="replace")
    elif isinstance(first_frame, str):
        text = first_frame
    else:
        return "json"
    start = text.lstrip(" \t\r\n\ufeff")[:1]
    if start == "<":
        return "xml"
    if start == "{" and _is_terminal_request(text):
        return "terminal"
    return "json"


def _is_terminal_request(text: str) -> bool:
    try:
        # lenient: terminals' frames may carry trailing commas or padded keys
        obj = loads_lenient(text, max_bytes=4 * MAX_DOCUMENT_CHARS)
    except ProtocolError:
        return False
    return "cmd" in obj and "type" not in obj

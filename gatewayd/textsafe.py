"""Text from devices and clients made safe for the places people read it.

- `printable`: control characters (C0, DEL, C1) as visible escapes, so a name or serial number
  cannot move a terminal's cursor, change its colours or retitle its window (`gatewayd monitor`,
  tables, logs). Newlines are kept where the caller says the text is multi-line.
- `csv_cell`: a spreadsheet formula neutralised (OWASP, "CSV Injection"): a text cell starting
  with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`, which spreadsheets show as
  text and do not evaluate. Numbers the daemon itself wrote stay numbers.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\x1b": "\\e"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """`text` (made a string) with control characters shown as escapes (\\e, \\t, \\x07, ...)."""
    text = text if isinstance(text, str) else str(text)
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escape, text) if pattern.search(text) else text


def csv_cell(value: object) -> object:
    """A value for a CSV cell: text that a spreadsheet would run as a formula is made plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value

"""Operator commands as data: what the ground floor and each connector declare for the command line.

The command-line package builds its parser from these; nothing here parses arguments or prints.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Callable

from .textsafe import printable

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    def __init__(self, message: str, status: int = EXIT_FAIL):
        super().__init__(message)
        self.status = status


@dataclass
class Arg:
    name: str
    help: str = ""
    flag: bool = False           # --name VALUE instead of positional
    switch: bool = False         # --name (boolean)
    type: Callable[[str], Any] = str
    dest: str | None = None      # the operation's argument name, when it differs


@dataclass
class OpCommand:
    """`gatewayd WORDS ARGS` runs operation `op` (through the daemon, or offline when it is stopped)."""

    words: tuple[str, ...]
    op: str
    help: str
    args: list[Arg] = field(default_factory=list)
    human: Callable[[Any], str] | None = None
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None


# A command with its own parser and runner: add_parser(subparsers, common) adds it and sets
# `run_command=fn(namespace, settings) -> exit status` as its default (`gatewayd monitor`).
ParserHook = Callable[[argparse._SubParsersAction, Callable[[argparse.ArgumentParser], None]], None]


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as aligned columns; control characters in values (names and serial numbers come from
    devices) are shown escaped."""
    if not rows:
        return "(none)"
    cells = [[printable(row.get(c, "") if row.get(c) is not None else "-") for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(widths[i]) for i, c in enumerate(columns))]
    for line in cells:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)))
    return "\n".join(lines)


def pairs(result: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {printable(v)}" for k, v in result.items())

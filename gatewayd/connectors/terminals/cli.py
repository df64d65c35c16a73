"""`gatewayd terminal add|list|show|update|approve|reject|delete`: the command-line words for the
terminal registry's operations."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ...opcommands import Arg, OpCommand, table as _table


# -- command line ------------------------------------------------------------------------------------
def _terminal_table(rows: list[dict[str, Any]]) -> str:
    return _table(rows, ["sn", "name", "status", "online", "protocol", "connector", "effective_tz", "last_seen",
                         "held_records"])


def _access_arg(text: str) -> Any:
    """--access: a rule as JSON, or '' / none for no rule."""
    if text.strip() in ("", "none"):
        return text.strip()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


_ACCESS = Arg("access", "door rule for sendlog replies as JSON, e.g. '{\"mode\":\"listed\"}'; none for no rule",
              flag=True, type=_access_arg)


def _terminal_pairs(t: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in t.items())


COMMANDS = [
    OpCommand(("terminal", "add"), "terminal.add", "add (or approve) an attendance terminal by serial number",
              [Arg("sn", "the terminal's serial number"), Arg("name", "a name to show", flag=True),
               Arg("tz", "the time zone of its clock (default: terminals.timezone)", flag=True),
               Arg("cloudtime", "iso or local: the form of cloudtime in replies", flag=True),
               Arg("encoding", "PUSH terminals: how names that are not UTF-8 are read, e.g. gbk", flag=True),
               _ACCESS],
              _terminal_pairs),
    OpCommand(("terminal", "list"), "terminal.list", "list attendance terminals",
              [Arg("status", "accepted, pending or rejected", flag=True)], _terminal_table),
    OpCommand(("terminal", "show"), "terminal.get", "show one terminal", [Arg("sn")], _terminal_pairs),
    OpCommand(("terminal", "update"), "terminal.update", "change a terminal's name, time zone, cloudtime or door rule",
              [Arg("sn"), Arg("name", flag=True), Arg("tz", "'' for the default", flag=True),
               Arg("cloudtime", "iso, local, or '' for the default", flag=True),
               Arg("encoding", "PUSH terminals' fallback encoding, '' for the default", flag=True), _ACCESS],
              _terminal_pairs),
    OpCommand(("terminal", "approve"), "terminal.approve", "accept a pending terminal and store its held records",
              [Arg("sn")], lambda t: f"terminal {t['sn']} accepted"),
    OpCommand(("terminal", "reject"), "terminal.reject", "refuse a terminal and drop its held records",
              [Arg("sn")], lambda t: f"terminal {t['sn']} rejected"),
    OpCommand(("terminal", "delete"), "terminal.delete", "remove a terminal (its stored punches stay)",
              [Arg("sn")], lambda r: f"terminal {r['sn']} deleted"),
]

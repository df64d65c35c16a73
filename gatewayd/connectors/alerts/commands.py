"""`gatewayd alert list|ack`."""

from __future__ import annotations

from ...opcommands import Arg, OpCommand, table as _table

COMMANDS = [
    OpCommand(("alert", "list"), "alert.list", "list alerts (active by default)",
              [Arg("state", "active, cleared or all", flag=True)],
              lambda rows: _table(rows, ["id", "kind", "subject", "state", "since", "raised", "cleared"])),
    OpCommand(("alert", "ack"), "alert.ack", "acknowledge an alert", [Arg("alert_id", "the alert's id")],
              human=lambda a: f"alert {a['id']} acknowledged", prepare=lambda args: {**args, "actor": "cli"}),
]

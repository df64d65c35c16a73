"""Attendance terminals: cmd/ret over WebSocket (on /ws) and HTTP, their commands and punches."""

from __future__ import annotations

from ... import ops
from ...connector import Connector
from . import attendance, commands, dashboard, http, rest, service
from .attendance_state import AttendanceState
from .state import TerminalsState

CONNECTOR = Connector(
    name="terminals",
    config_sections=("terminals",),
    state_parts=(TerminalsState, AttendanceState),
    services=(("terminals", service.TerminalService), ("terminal_commands", commands.TerminalCommands),
              ("attendance", attendance.AttendanceService)),
    operations=ops.collect(service, commands, attendance),
    blueprints=(http.blueprint, rest.blueprint, dashboard.blueprint),
    commands=(*attendance.COMMANDS, *service.COMMANDS, *commands.COMMANDS),
    comms=(service, commands, attendance),
)

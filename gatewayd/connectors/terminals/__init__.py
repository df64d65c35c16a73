"""Attendance terminals: cmd/ret over WebSocket (on /ws) and HTTP, ZKTeco PUSH (`push/`), their commands
and punches."""

from __future__ import annotations

from ... import ops
from ...connector import Connector
from . import (attendance, cli, command_comms, command_ops, commands, comms, dashboard, http, registry_ops, rest,
               service, users)
from .attendance_state import AttendanceState
from .push import routes as push_routes
from .push.service import PushService
from .push.state import PushState
from .state import TerminalsState
from .users_state import TerminalUsersState

CONNECTOR = Connector(
    name="terminals",
    config_sections=("terminals",),
    state_parts=(TerminalsState, AttendanceState, PushState, TerminalUsersState),
    services=(("terminals", service.TerminalService), ("terminal_commands", commands.TerminalCommands),
              ("attendance", attendance.AttendanceService), ("push", PushService)),
    operations=ops.collect(service, registry_ops, command_ops, attendance, users),
    blueprints=(http.blueprint, rest.blueprint, dashboard.blueprint, push_routes.blueprint),
    http_routes=http.HTTP_ROUTES,
    commands=(*attendance.COMMANDS, *cli.COMMANDS, *command_ops.COMMANDS),
    comms=(comms.COMMS, command_comms.COMMS, attendance.COMMS),
)

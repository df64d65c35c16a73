"""WebSocket devices (JSON and XML on /ws) and their commands, telemetry and presence."""

from __future__ import annotations

from ... import ops
from ...connector import Connector
from . import cli, commands, comms, dashboard, dashboard_csv, rest, service, ws
from .commands_state import CommandsState
from .presence import Presence
from .state import DevicesState

CONNECTOR = Connector(
    name="devices",
    config_sections=("devices", "presence"),
    state_parts=(DevicesState, CommandsState),
    services=(("devices", service.DeviceRegistry), ("presence", Presence), ("commands", commands.CommandService)),
    operations=ops.collect(service, commands),
    blueprints=(rest.blueprint, dashboard.blueprint, dashboard_csv.blueprint),
    websockets=ws.WEBSOCKETS,
    commands=tuple(cli.COMMANDS),
    comms=(comms.COMMS,),
)

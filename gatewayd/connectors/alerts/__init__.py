"""Alerts: offline devices, silent gateways, offline terminals, a filling disk, skewed terminal
clocks. `engine` decides (pure), `state` applies the alert records, `service` checks periodically
and journals; `routes` serves the API and the dashboard page; `actions` puts them on
/monitor/actions; `commands` is `gatewayd alert`."""

from __future__ import annotations

from ... import ops
from ...connector import Connector
from . import actions, commands, routes, service
from .state import AlertsState

CONNECTOR = Connector(
    name="alerts",
    config_sections=("alerts",),
    state_parts=(AlertsState,),
    services=(("alerts", service.AlertService),),
    operations=ops.collect(service),
    blueprints=(routes.blueprint, routes.dashboard),
    commands=tuple(commands.COMMANDS),
    comms=(actions.COMMS,),
)

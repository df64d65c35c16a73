"""Monitoring: the ResIOT communications and actions streams, TX requests, the dashboard's live feed."""

from __future__ import annotations

from ...connector import Connector
from . import cli, core_actions, dashboard_ws, tx_api, ws
from .service import MonitorService

CONNECTOR = Connector(
    name="monitor",
    config_sections=("monitor",),
    services=(("monitor", MonitorService),),
    blueprints=(tx_api.blueprint,),
    websockets=(*ws.WEBSOCKETS, *dashboard_ws.WEBSOCKETS),
    parsers=(cli.add_monitor_parser,),
    comms=(core_actions.COMMS,),
)

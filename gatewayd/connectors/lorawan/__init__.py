"""LoRaWAN: packet forwarders over UDP (GWMP) and Basics Station gateways over WebSocket (`station/`),
frames and keys, regions, joins, uplinks and downlinks, gateways."""

from __future__ import annotations

from ... import ops
from ...connector import Connector
from . import comms, dashboard, rest, service
from .state import LorawanState
from .station import routes as station_routes
from .station.service import StationService
from .udp import GwmpListener

CONNECTOR = Connector(
    name="lorawan",
    config_sections=("lorawan",),
    state_parts=(LorawanState,),
    services=(("lorawan", service.LorawanService), ("udp", GwmpListener), ("station", StationService)),
    operations=ops.collect(service),
    blueprints=(rest.blueprint, dashboard.blueprint),
    websockets=station_routes.WEBSOCKETS,
    commands=tuple(service.COMMANDS),
    comms=(comms.COMMS,),
)

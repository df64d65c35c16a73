"""LoRaWAN: packet forwarders over UDP (GWMP), frames and keys, joins, uplinks and downlinks, gateways."""

from __future__ import annotations

from ... import ops
from ...connector import Connector
from . import comms, dashboard, rest, service
from .state import LorawanState
from .udp import GwmpListener

CONNECTOR = Connector(
    name="lorawan",
    config_sections=("lorawan",),
    state_parts=(LorawanState,),
    services=(("lorawan", service.LorawanService), ("udp", GwmpListener)),
    operations=ops.collect(service),
    blueprints=(rest.blueprint, dashboard.blueprint),
    commands=tuple(service.COMMANDS),
    comms=(comms,),
)

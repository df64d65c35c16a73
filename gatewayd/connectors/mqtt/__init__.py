"""MQTT northbound: every event to a broker, store-and-forward from the journal, commands back down."""

from __future__ import annotations

from ... import ops
from ...connector import Connector
from . import cli, service

CONNECTOR = Connector(
    name="mqtt",
    config_sections=("mqtt",),
    services=(("mqtt", service.MqttService),),
    operations=ops.collect(cli),
    commands=tuple(cli.COMMANDS),
    comms=(service.COMMS,),
)

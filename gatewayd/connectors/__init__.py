"""The connectors of this gateway, in order: the one list the daemon, the web application and the
command line are built from. Adding a connector means adding its package here (docs/architecture.md)."""

from __future__ import annotations

from ..connector import Connector
from .alerts import CONNECTOR as ALERTS
from .devices import CONNECTOR as DEVICES
from .lorawan import CONNECTOR as LORAWAN
from .monitor import CONNECTOR as MONITOR
from .mqtt import CONNECTOR as MQTT
from .terminals import CONNECTOR as TERMINALS
from .webhooks import CONNECTOR as WEBHOOKS

# The order is the order in which state parts apply a record, services start, routes are
# registered and commands are listed.
CONNECTORS: tuple[Connector, ...] = (DEVICES, TERMINALS, LORAWAN, MONITOR, ALERTS, WEBHOOKS, MQTT)

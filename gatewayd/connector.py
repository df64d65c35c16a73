"""What a connector declares: the parts it adds to the ground floor.

A connector is one family of devices the gateway speaks to (WebSocket devices, attendance terminals,
LoRaWAN, monitoring clients ...). Its package's `__init__` builds one `Connector`, and
`gatewayd.connectors` lists them all, in order. The ground floor (state, core, web application,
command line) takes that list as an argument and never imports a connector itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .comm_tables import Comms
from .opcommands import OpCommand, ParserHook
from .ops import OpSpec


@dataclass(frozen=True)
class Connector:
    name: str
    # Its sections of gatewayd.toml (settings.<section>).
    config_sections: tuple[str, ...] = ()
    # Parts of the model (gatewayd.state.StatePart classes). Appliers of one record type run in
    # the order of the connector list, then of this tuple.
    state_parts: tuple[type, ...] = ()
    # (name, factory(core)): created for the daemon and offline commands alike; the daemon starts
    # `run(task_status=...)` of those that have one.
    services: tuple[tuple[str, Callable[[Any], Any]], ...] = ()
    # Operations (gatewayd.ops.collect over the modules that define them).
    operations: tuple[OpSpec, ...] = ()
    # Quart blueprints: HTTP and WebSocket routes, dashboard pages.
    blueprints: tuple[Any, ...] = ()
    # WebSocket routes answered as plain ASGI before the web framework sees them (hot paths;
    # gatewayd.web.asgi_ws.WsRoute).
    websockets: tuple[Any, ...] = ()
    # HTTP routes answered as plain ASGI before the web framework (hot paths;
    # gatewayd.web.asgi_http.HttpRoute); the same path stays registered with the framework.
    http_routes: tuple[Any, ...] = ()
    # Command-line words for its operations, and commands with a parser of their own.
    commands: tuple[OpCommand, ...] = ()
    parsers: tuple[ParserHook, ...] = ()
    # What it adds to monitoring: record type -> communications / action mappers, TX handlers
    # (gatewayd.comm_tables; the core merges every connector's into core.comms when it opens).
    comms: tuple[Comms, ...] = ()

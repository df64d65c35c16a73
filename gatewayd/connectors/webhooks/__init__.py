"""Webhooks: journal events POSTed to HTTP endpoints, in order, at least once, across restarts.
`spec` is what one webhook is, `state` the webhooks added at runtime, `delivery` the pure parts
(bodies, signatures, backoff), `worker` one endpoint's sender, `service` the set of them and their
operations, `routes` the API and the dashboard, `actions` /monitor/actions, `commands` the CLI."""

from __future__ import annotations

from ... import ops
from ...connector import Connector
from . import actions, commands, routes, service
from .state import WebhooksState

CONNECTOR = Connector(
    name="webhooks",
    config_sections=("webhooks",),
    state_parts=(WebhooksState,),
    services=(("webhooks", service.WebhookService),),
    operations=ops.collect(service),
    blueprints=(routes.blueprint, routes.dashboard),
    commands=tuple(commands.COMMANDS),
    comms=(actions.COMMS,),
)

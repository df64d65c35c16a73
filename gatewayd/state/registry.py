"""Every part of the model, in the order their appliers run."""

from __future__ import annotations


def part_classes() -> list[type]:
    from .access import AccessState
    from .device_commands import CommandsState
    from .devices import DevicesState
    from .lorawan import LorawanState
    from .attendance import AttendanceState
    from .terminals import TerminalsState
    from ..connectors.terminals.push.state import PushState
    from ..connectors.alerts.state import AlertsState
    from ..connectors.webhooks.state import WebhooksState

    return [AccessState, DevicesState, CommandsState, TerminalsState, AttendanceState, PushState, LorawanState,
            AlertsState, WebhooksState]

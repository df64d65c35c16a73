"""Every service of the daemon: (name, factory(core)). Created for the daemon and offline commands
alike; the daemon also starts `run(task_status=...)` in its root nursery for those that have one."""

from __future__ import annotations


def service_factories() -> list[tuple[str, object]]:
    from .commands import CommandService
    from .devices import DeviceRegistry
    from .journal_ops import Compactor
    from .lorawan import LorawanService
    from ..transports.udp import GwmpListener
    from .monitor import MonitorService
    from .presence import Presence
    from .sessions import Sessions
    from .attendance import AttendanceService
    from .terminal_commands import TerminalCommands
    from .terminals import TerminalService
    from ..connectors.terminals.push.service import PushService
    from ..connectors.mqtt.service import MqttService
    from ..connectors.lorawan.station.service import StationService
    from ..connectors.alerts.service import AlertService
    from ..connectors.webhooks.service import WebhookService

    return [
        ("terminals", TerminalService), ("terminal_commands", TerminalCommands), ("attendance", AttendanceService),
        ("push", PushService),
        ("compactor", Compactor),
        ("monitor", MonitorService),
        ("devices", DeviceRegistry), ("presence", Presence), ("commands", CommandService),
        ("lorawan", LorawanService), ("udp", GwmpListener), ("station", StationService),
        ("sessions", Sessions), ("alerts", AlertService), ("webhooks", WebhookService),
        ("mqtt", MqttService),
    ]

"""Imports every service module so that its operations and factories are registered."""

from . import access, journal_ops  # noqa: F401
from . import commands, device_cli, device_comms, devices  # noqa: F401
from . import core_actions, monitor, tx_dispatch  # noqa: F401
from . import attendance, terminal_commands, terminals  # noqa: F401
from . import lorawan, lorawan_comms  # noqa: F401
from . import backup  # noqa: F401
from ..connectors.mqtt import cli as mqtt_cli  # noqa: F401
from ..connectors.alerts import actions, commands, service  # noqa: F401
from ..connectors.webhooks import actions as webhook_actions, commands as webhook_commands  # noqa: F401
from ..connectors.webhooks import service as webhook_service  # noqa: F401
from ..history import ops as history_ops  # noqa: F401

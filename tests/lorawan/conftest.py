"""Every LoRaWAN test daemon listens for packet forwarders on a free UDP port of 127.0.0.1."""

import pytest

from .helpers import free_udp_port


# MAC requests the network makes on its own (DevStatusReq, NewChannelReq to ABP devices) are off
# unless a module turns them on: most tests count the downlinks they cause.
QUIET_MAC = {"dev_status_hours": 0, "extra_channels": False}


@pytest.fixture
def lorawan_settings() -> dict:
    """Override in a module for other [lorawan] settings."""
    return dict(QUIET_MAC)


@pytest.fixture
def daemon_sections(lorawan_settings) -> dict:
    return {"server": {"udp_port": free_udp_port(), "udp_host": "127.0.0.1"}, "lorawan": lorawan_settings}

"""Fixtures: a Mosquitto per test, a subscriber, and a daemon publishing to it."""

import os

import pytest

from tests.lorawan.helpers import free_udp_port

from .broker import MOSQUITTO, Broker, Subscriber

SITE = "site1"
PREFIX = f"gatewayd/{SITE}"


def mqtt_section(broker: Broker, **extra) -> dict:
    return {"url": broker.url, "site": SITE, "reconnect_max": 1.0, "publish_rate": 0.0, "keepalive": 5,
            "connect_timeout": 3.0, **extra}


@pytest.fixture
def broker(tmp_path):
    if not os.path.exists(MOSQUITTO):
        pytest.skip("Debian's mosquitto is not installed (make test installs it)")
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
async def subscriber(broker):
    sub = await Subscriber(broker, f"{PREFIX}/#").start()
    yield sub
    sub.stop()


@pytest.fixture
def mqtt_settings() -> dict:
    """Override in a module for other [mqtt] settings."""
    return {}


@pytest.fixture
def daemon_sections(broker, mqtt_settings):
    return {"mqtt": mqtt_section(broker, **mqtt_settings),
            "server": {"udp_port": free_udp_port(), "udp_host": "127.0.0.1"},
            "devices": {"rate_per_second": 100_000.0, "rate_burst": 100_000}}

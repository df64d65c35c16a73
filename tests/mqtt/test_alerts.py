"""Alerts on MQTT: `{prefix}/alert` carries each alert raised and cleared."""

import pytest

from tests.devices.helpers import create_device, open_websocket_url, register, ws_url
from tests.lorawan.helpers import free_udp_port

from .conftest import PREFIX, SITE, mqtt_section


@pytest.fixture
def daemon_sections(broker):
    return {"mqtt": mqtt_section(broker), "server": {"udp_port": free_udp_port(), "udp_host": "127.0.0.1"},
            "alerts": {"device_offline_after": 0.5, "check_interval": 0.1, "disk_free_below_percent": 0}}


async def test_a_device_offline_alert_is_published_raised_then_cleared(daemon, subscriber):
    device = await create_device(daemon, "pump")
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
    topic = f"{PREFIX}/alert"
    [(_, raised)] = await subscriber.wait_for(lambda ms: [m for m in ms if m[0] == topic][:1])
    assert raised["event"] == "alert" and raised["site"] == SITE and raised["comm"] is None
    assert raised["alert"]["kind"] == "device_offline" and raised["alert"]["state"] == "raised"
    assert raised["alert"]["subject"] == device["id"]
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        cleared = await subscriber.wait_for(
            lambda ms: [b for t, b in ms if t == topic and b["alert"]["state"] == "cleared"])
    assert cleared[0]["alert"]["id"] == raised["alert"]["id"] and cleared[0]["alert"]["reason"] == "back online"

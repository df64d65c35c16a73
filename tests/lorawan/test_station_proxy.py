"""Station discovery behind a TLS-terminating reverse proxy listed in server.trusted_proxies."""

from __future__ import annotations

import json

import pytest
from trio_websocket import open_websocket_url

from .helpers import free_udp_port
from .station_sim import STATION_GW, id6


@pytest.fixture
def daemon_sections() -> dict:
    return {"server": {"udp_port": free_udp_port(), "udp_host": "127.0.0.1", "trusted_proxies": ["127.0.0.1"]}}


async def test_discovery_hands_out_wss_when_the_trusted_proxy_spoke_tls(daemon):
    async def discover(headers):
        async with open_websocket_url(f"{daemon.ws_url}/router-info", extra_headers=headers) as ws:
            await ws.send_message(json.dumps({"router": id6(STATION_GW)}))
            return json.loads(await ws.get_message())

    behind = await discover([(b"X-Forwarded-Proto", b"https")])
    assert behind["uri"] == f"wss://127.0.0.1:{daemon.port}/router/{STATION_GW}"
    direct = await discover([])
    assert direct["uri"] == f"ws://127.0.0.1:{daemon.port}/router/{STATION_GW}"

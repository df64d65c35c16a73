"""A dead and a hanging endpoint delay neither a healthy one nor the devices' acknowledgements;
events older than max_age are dropped with a record on /monitor/actions; batches."""

from __future__ import annotations

import socket

import httpx
import pytest
import trio

from tests.conftest import wait_for

from ..devices.helpers import create_device
from .receiver import HANG, start_receiver
from .test_delivery import send_telemetry, telemetry_seqs

pytestmark = pytest.mark.timeout(120)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def receivers(nursery):
    healthy = await start_receiver(nursery)
    hanging = await start_receiver(nursery, lambda request: HANG)
    batches = await start_receiver(nursery)
    return healthy, hanging, batches


@pytest.fixture
async def daemon_sections(receivers):
    healthy, hanging, batches = receivers
    return {"webhooks": [
        {"url": healthy.url, "name": "healthy", "events": ["up"]},
        {"url": hanging.url, "name": "hanging", "events": ["up"], "timeout": 30},
        {"url": f"http://127.0.0.1:{unused_port()}/gone", "name": "dead", "events": ["*"], "max_age": 1},
        {"url": batches.url, "name": "batches", "events": ["up"], "batch": True, "batch_max": 7},
    ]}


async def test_dead_endpoints_delay_nobody_and_old_events_are_dropped(daemon, receivers):
    healthy, hanging, batches = receivers
    core = daemon.core
    core.service("webhooks").retry_first = 0.05
    device = await create_device(daemon, "meter")
    with core.hub.subscribe(accept=lambda r: r.type == "webhook.dropped") as drops:
        with trio.fail_after(30):  # acknowledgements keep coming while two endpoints never answer
            await send_telemetry(daemon, device, range(30))
        expected = [f"{seq}.0" for seq in telemetry_seqs(daemon, device["id"])]
        await healthy.wait_until(lambda _: [b["event_id"] for b in healthy.delivered()] == expected)
        await batches.wait_until(lambda _: [b["event_id"] for b in batches.delivered()] == expected)
        assert len(hanging.requests) == 1  # still waiting for its first answer
        with trio.fail_after(20):
            dropped = await drops.receive.receive()
    assert dropped.data["name"] == "dead" and dropped.data["count"] >= 1 and "Connect" in dropped.data["error"]

    for request in batches.requests:
        events = request.json()
        assert isinstance(events, list) and 1 <= len(events) <= 7
        assert request.headers["x-gatewayd-delivery"] == f"{events[0]['event_id']}..{events[-1]['event_id']}"
        assert "x-gatewayd-signature" not in request.headers
    assert healthy.connections == 1  # one kept-alive connection for every request

    listing = {w["name"]: w for w in (await httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth)
                                      .get("/api/webhooks")).json()["items"]}
    assert listing["healthy"]["backlog"] is not None and listing["healthy"]["failing_since"] is None
    assert listing["dead"]["failing_since"] is not None and listing["dead"]["dropped"] >= 1
    assert listing["hanging"]["last_success"] is None
    metrics = (await httpx.AsyncClient(base_url=daemon.base_url).get("/metrics")).text
    assert 'gatewayd_webhook_backlog_records{webhook="hanging"}' in metrics
    assert 'gatewayd_webhook_events_total{result="delivered",webhook="healthy"} 30' in metrics
    assert 'gatewayd_webhook_events_total{result="dropped",webhook="dead"}' in metrics

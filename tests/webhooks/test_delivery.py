"""Webhook deliveries to a real HTTP receiver: signatures, retries after 500s and timeouts, a
restart of gatewayd in the middle, independence from a dead endpoint, drops after max_age."""

from __future__ import annotations

import pytest
import trio

from gatewayd.journal.reader import JournalReader
from tests.conftest import wait_for

from ..devices.helpers import create_device, open_websocket_url, receive_json, register, send_json, ws_url
from .receiver import HANG, start_receiver

pytestmark = pytest.mark.timeout(120)
SECRET = "s3cret-for-tests"


def telemetry_seqs(daemon, device_id: str) -> list[int]:
    return [r.seq for r in JournalReader(daemon.core.journal_dir).records()
            if r.type == "device.telemetry" and r.data["device_id"] == device_id]


async def send_telemetry(daemon, device, values) -> None:
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        for value in values:
            await send_json(ws, {"type": "telemetry", "payload": {"n": value}, "id": str(value)})
            assert (await receive_json(ws))["type"] == "ack"


def first_deliveries(receiver) -> list[str]:
    seen, order = set(), []
    for body in receiver.delivered():
        if body["event_id"] not in seen:
            seen.add(body["event_id"])
            order.append(body["event_id"])
    return order


@pytest.fixture
async def flaky(nursery):
    """500 for the 2nd request, no answer for the 3rd and 5th, 200 otherwise."""
    counter = {"n": 0}

    def answer(request):
        counter["n"] += 1
        return {2: 500, 3: HANG, 5: HANG}.get(counter["n"], 200)

    return await start_receiver(nursery, answer)


@pytest.fixture
async def daemon_sections(flaky):
    return {"webhooks": [{"url": flaky.url, "name": "erp", "events": ["up"], "secret": SECRET, "timeout": 0.5}]}


async def test_every_event_arrives_signed_in_order_across_retries_and_a_restart(daemon, flaky):
    daemon.core.service("webhooks").retry_first = 0.01
    device = await create_device(daemon, "meter")
    await send_telemetry(daemon, device, range(0, 20))
    await flaky.wait_until(lambda requests: len(requests) >= 8)
    await daemon.restart()
    daemon.core.service("webhooks").retry_first = 0.01
    await send_telemetry(daemon, device, range(20, 40))

    expected = [f"{seq}.0" for seq in telemetry_seqs(daemon, device["id"])]
    assert len(expected) == 40
    await flaky.wait_until(lambda requests: set(expected) <= {b["event_id"] for b in flaky.delivered()})
    assert first_deliveries(flaky) == expected  # in order, every one
    assert {r.answered for r in flaky.requests} >= {500, HANG, 200}
    for request in flaky.requests:
        assert request.signed_by(SECRET), request.headers
        body = request.json()
        assert request.headers["x-gatewayd-delivery"] == body["event_id"]
        assert request.headers["x-gatewayd-event"] == "up" and body["event"] == "up"
        assert body["device_id"] == device["id"] and body["name"] == "meter" and "comm" in body
    # Only the same event is sent again (a retry, or the one in flight when gatewayd stopped):
    # repeats aside, the requests go strictly forward.
    seqs = [r.json()["seq"] for r in flaky.requests]
    forward = [b for a, b in zip([0] + seqs, seqs) if b != a]
    assert forward == sorted(set(forward)) and len(forward) == 40
    listing = daemon.core.service("webhooks").public(daemon.core.service("webhooks").specs()["erp"])
    assert listing["last_success"] is not None and listing["source"] == "config" and listing["signed"]

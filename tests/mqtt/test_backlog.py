"""The backlog's bound: beyond mqtt.max_backlog_records the oldest records are given up, on record."""

import pytest

from gatewayd.connectors.mqtt import service as mqtt_service
from gatewayd.gateway import comm_tables
from tests.conftest import wait_for
from tests.lorawan.helpers import records_of

comms = comm_tables()


@pytest.fixture
def mqtt_settings():
    return {"max_backlog_records": 1000}


async def test_a_backlog_beyond_its_limit_is_dropped_from_its_oldest_end(daemon, broker, monkeypatch):
    monkeypatch.setattr(mqtt_service, "BACKLOG_CHECK_INTERVAL", 0.05)
    service = daemon.core.service("mqtt")
    await wait_for(lambda: service.state == "connected", timeout=10)
    broker.stop()
    await wait_for(lambda: service.state != "connected", timeout=10)
    start = service.acked_seq
    for n in range(1500):
        await daemon.core.hub.publish("device.telemetry", {"device_id": "d1", "name": "n", "connector": "ws",
                                                           "payload": {"n": n}}, durable=False)
    [drop] = await wait_for(lambda: records_of(daemon.core, mqtt_service.BACKLOG_DROPPED), timeout=10)
    assert drop.data["from_seq"] == start + 1 and drop.data["records"] >= 600  # down to 90 % of the limit
    await wait_for(lambda: service.acked_seq == drop.data["to_seq"])
    assert service.backlog <= 1000
    await wait_for(lambda: daemon.core.cursors.load(mqtt_service.CURSOR) == drop.data["to_seq"])
    action = comms.action(drop)
    assert action.action_type == "mqtt_backlog_dropped" and action.details["records"] == drop.data["records"]
    broker.start()
    last = daemon.core.hub.fanned_seq
    await wait_for(lambda: service.acked_seq >= last, timeout=20)
    assert service.dropped_records == drop.data["records"]

"""Events from the journal to a real Mosquitto: every kind, order across outages, the cursor."""

import json

import trio

from gatewayd.connectors.mqtt.service import CURSOR
from gatewayd.connectors.mqtt.topics import event_topic
from gatewayd.northbound.events import EVENT_KINDS, StateDirectory, events_of
from gatewayd.connectors.monitor.streams import local_zone
from tests.conftest import wait_for
from tests.devices.helpers import create_device, open_websocket_url, receive_json, register, send_json, ws_url
from tests.northbound.test_events import RECORDS

from .broker import Subscriber
from .conftest import PREFIX, SITE


def first_occurrences(messages: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """What a consumer keeps after dropping repeats by event_id (QoS 1 is at least once)."""
    seen, kept = set(), []
    for topic, body in messages:
        if body["event_id"] not in seen:
            seen.add(body["event_id"])
            kept.append((topic, body))
    return kept


async def telemetry(daemon, count: int, start: int = 0) -> list:
    return [await daemon.core.hub.publish("device.telemetry", {"device_id": "d1", "name": "n", "connector": "ws",
                                                               "payload": {"n": n}})
            for n in range(start, start + count)]


async def test_every_event_kind_is_published_with_its_body(daemon, subscriber):
    core = daemon.core
    published = [await core.hub.publish(r.type, r.data) for r in RECORDS]
    zone = local_zone(core.settings.monitor.timezone)
    expected = [(event_topic(PREFIX, e), e.body) for r in published
                for e in events_of(r, StateDirectory(core.state), zone, comms=core.comms, site=SITE)]
    got = await subscriber.wait_for(lambda ms: len(first_occurrences(ms)) >= len(expected) and ms)
    assert [(t, json.loads(json.dumps(b))) for t, b in first_occurrences(got)] == \
        [(t, json.loads(json.dumps(b))) for t, b in expected]
    kinds = {tuple(t.split("/")[2:3] + t.split("/")[5:6]) for t, _ in expected}
    assert kinds == {(subject, kind) for subject, names in EVENT_KINDS.items() for kind in names}
    service = core.service("mqtt")
    await wait_for(lambda: service.acked_seq == published[-1].seq)
    await wait_for(lambda: core.cursors.load(CURSOR) == published[-1].seq)


async def test_a_device_message_reaches_the_broker(daemon, subscriber):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await send_json(ws, {"type": "telemetry", "payload": {"t": 21.5}, "id": 1})
        assert (await receive_json(ws))["type"] == "ack"
        topic = f"{PREFIX}/device/{device['id']}/event/up"
        [(_, body)] = await subscriber.wait_for(lambda ms: [m for m in ms if m[0] == topic])
    assert body["payload"] == {"t": 21.5} and body["event"] == "up" and body["site"] == SITE
    assert body["device_id"] == device["id"] and body["name"] == "sensor"
    assert body["comm"]["CommType"] == "comm_rx" and body["comm"]["Seq"] == body["seq"]
    status = f"{PREFIX}/device/{device['id']}/event/status"
    await subscriber.wait_for(lambda ms: [b for t, b in ms if t == status and b["online"] is False])


async def keeping_subscriber(broker) -> Subscriber:
    """A persistent session on a broker that saves it: nothing is lost while the subscriber itself
    reconnects after a restart of the broker."""
    broker.persistent = True
    broker.stop()
    broker.start()
    return await Subscriber(broker, f"{PREFIX}/#", client_id="keeper", persistent=True).start()


async def test_broker_stopped_mid_stream_and_restarted_loses_nothing_and_keeps_order(daemon, broker):
    subscriber = await keeping_subscriber(broker)
    service = daemon.core.service("mqtt")
    await wait_for(lambda: service.state == "connected", timeout=10)
    try:
        first = await telemetry(daemon, 300)
        await subscriber.wait_for(lambda ms: len(ms) >= 50)  # mid-stream ...
        broker.stop()  # ... the broker goes away
        await wait_for(lambda: service.state != "connected", timeout=10)
        second = await telemetry(daemon, 300, start=300)  # accepted meanwhile: kept in the journal
        assert service.backlog >= 300
        broker.start()
        await wait_for(lambda: service.state == "connected", timeout=15)
        wanted = [r.seq for r in first + second]
        got = await subscriber.wait_for(lambda ms: len(first_occurrences(ms)) >= len(wanted) and ms, timeout=30)
    finally:
        subscriber.stop()
    kept = first_occurrences(got)
    assert [b["seq"] for _, b in kept] == wanted  # every one, in journal order
    assert [b["payload"]["n"] for _, b in kept] == list(range(600))
    await wait_for(lambda: service.acked_seq >= wanted[-1])


async def test_the_cursor_survives_a_restart_of_the_daemon(daemon, broker):
    subscriber = await keeping_subscriber(broker)
    try:
        records = await telemetry(daemon, 5)
        service = daemon.core.service("mqtt")
        await wait_for(lambda: service.acked_seq >= records[-1].seq, timeout=10)
        broker.stop()
        more = await telemetry(daemon, 5, start=5)
        await daemon.restart()  # the broker is still away: the restarted daemon resumes from its cursor
        broker.start()
        await subscriber.wait_for(lambda ms: len(first_occurrences(ms)) >= 10, timeout=20)
        service = daemon.core.service("mqtt")
        await wait_for(lambda: service.acked_seq >= more[-1].seq, timeout=10)
        ups = [b["seq"] for _, b in first_occurrences(subscriber.snapshot()) if b["event"] == "up"]
    finally:
        subscriber.stop()
    assert ups == [r.seq for r in records + more]


async def test_a_stalled_broker_does_not_slow_ingest(daemon, broker, subscriber):
    service = daemon.core.service("mqtt")
    await wait_for(lambda: service.state == "connected", timeout=10)
    device = await create_device(daemon)
    broker.pause()  # connection open, nothing acknowledged
    try:
        async with open_websocket_url(ws_url(daemon)) as ws:
            await register(ws, device)
            for n in range(500):
                await send_json(ws, {"type": "telemetry", "payload": {"n": n}, "id": n})
            with trio.fail_after(60):
                acks = 0
                while acks < 500:
                    acks += (await receive_json(ws, timeout=60))["type"] == "ack"
        # Every message is acknowledged and durable while the broker answers nothing: the backlog
        # is in the journal, and what waits in memory is bounded by the in-flight window.
        assert service.backlog >= 500
        assert service.status()["in_flight"] <= daemon.core.settings.mqtt.max_inflight
    finally:
        broker.resume()
    last = daemon.core.hub.fanned_seq
    await wait_for(lambda: service.acked_seq >= last, timeout=30)

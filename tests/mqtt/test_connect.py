"""Connecting: TLS with a test CA, user and password, failures reported once, health, status."""

import logging
import re

import httpx
import pytest

from gatewayd import ops
from gatewayd.connectors.mqtt.service import CURSOR
from tests.conftest import Daemon, run_cli, wait_for

from .broker import Broker, Subscriber, make_ca
from .conftest import PREFIX, mqtt_section


async def start_daemon(nursery, tmp_path, broker, **mqtt) -> Daemon:
    return await Daemon(nursery, tmp_path / "state", {"mqtt": mqtt_section(broker, **mqtt)}).start()


async def published_one(daemon, subscriber) -> dict:
    record = await daemon.core.hub.publish("device.online", {"device_id": "d1", "name": "n", "connector": "ws"})
    [(_, body)] = await subscriber.wait_for(lambda ms: [m for m in ms if m[1].get("seq") == record.seq])
    return body


async def health(daemon) -> dict:
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200  # a missing broker degrades, it does not make the appliance unavailable
    return response.json()


@pytest.fixture
def tls_broker(tmp_path):
    broker = Broker(tmp_path / "tls-broker", tls=make_ca(tmp_path / "ca")).start()
    yield broker
    broker.stop()


async def test_tls_with_a_test_ca(nursery, tmp_path, tls_broker):
    subscriber = await Subscriber(tls_broker, f"{PREFIX}/#").start()
    try:
        daemon = await start_daemon(nursery, tmp_path, tls_broker, ca_file=str(tls_broker.tls.ca_file))
        assert (await published_one(daemon, subscriber))["online"] is True
        assert (await health(daemon))["mqtt"]["state"] == "connected"
        await daemon.stop()
    finally:
        subscriber.stop()


async def test_a_broker_certificate_from_another_ca_is_one_clear_error(nursery, tmp_path, tls_broker, caplog):
    other = make_ca(tmp_path / "other-ca", "some other CA")
    daemon = await start_daemon(nursery, tmp_path, tls_broker, ca_file=str(other.ca_file))
    service = daemon.core.service("mqtt")
    await wait_for(lambda: service.attempts >= 3, timeout=15)  # it keeps retrying
    assert service.state == "tls_failed" and "certificate verify failed" in service.last_error
    lines = [r for r in caplog.records if r.name == "gatewayd.mqtt" and r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "TLS" in lines[0].getMessage()
    body = await health(daemon)
    assert body["status"] == "degraded" and body["mqtt"]["state"] == "tls_failed"
    await daemon.stop()


@pytest.fixture
def auth_broker(tmp_path):
    broker = Broker(tmp_path / "auth-broker", users={"gw": "right password", "reader": "r"}).start()
    yield broker
    broker.stop()


async def test_user_and_password_file(nursery, tmp_path, auth_broker):
    password_file = tmp_path / "mqtt-password"
    password_file.write_text("right password\n")
    subscriber = await Subscriber(auth_broker, f"{PREFIX}/#", username="reader", password="r").start()
    try:
        daemon = await start_daemon(nursery, tmp_path, auth_broker, username="gw", password_file=str(password_file))
        await published_one(daemon, subscriber)
        await daemon.stop()
    finally:
        subscriber.stop()


async def test_a_wrong_password_is_one_clear_error_and_it_keeps_retrying(nursery, tmp_path, auth_broker, caplog):
    password_file = tmp_path / "mqtt-password"
    password_file.write_text("wrong password\n")
    daemon = await start_daemon(nursery, tmp_path, auth_broker, username="gw", password_file=str(password_file))
    service = daemon.core.service("mqtt")
    await wait_for(lambda: service.attempts >= 3, timeout=15)
    assert service.state == "auth_failed"
    lines = [r.getMessage() for r in caplog.records if r.name == "gatewayd.mqtt" and r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "refused the connection" in lines[0], lines
    assert "wrong password" not in caplog.text
    body = await health(daemon)
    assert body["status"] == "degraded" and body["mqtt"]["state"] == "auth_failed"
    status = await ops.call(daemon.core, "mqtt.status", {})
    assert status["state"] == "auth_failed" and status["failed_attempts"] >= 3
    assert daemon.core.metrics.counters[("gatewayd_mqtt_connects_total", (("result", "auth"),))] >= 3
    # The operator fixes the password: the next attempt gets through.
    password_file.write_text("right password\n")
    await wait_for(lambda: service.state == "connected", timeout=15)
    await daemon.stop()


async def test_status_on_the_command_line_with_the_daemon_stopped(nursery, tmp_path, broker):
    daemon = await start_daemon(nursery, tmp_path, broker)
    await wait_for(lambda: daemon.core.service("mqtt").state == "connected", timeout=10)
    record = await daemon.core.hub.publish("device.online", {"device_id": "d1", "name": "n", "connector": "ws"})
    await wait_for(lambda: daemon.core.cursors.load(CURSOR) >= record.seq, timeout=10)
    await daemon.stop()
    config = tmp_path / "gatewayd.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n[mqtt]\nurl = "{broker.url}"\nsite = "s"\n')
    done = run_cli("mqtt", "status", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "MQTT: daemon not running" in done.stdout and "records behind" in done.stdout
    cursor, end = map(int, re.search(r"cursor: seq (\d+) of (\d+)", done.stdout).groups())
    assert record.seq <= cursor <= end


async def test_turning_mqtt_off_releases_the_journal(nursery, tmp_path, broker):
    daemon = await start_daemon(nursery, tmp_path, broker)
    assert daemon.core.cursors.exists(CURSOR)
    await daemon.stop()
    daemon.sections = {}
    await daemon.start()
    assert not daemon.core.cursors.exists(CURSOR)
    body = await health(daemon)
    assert "mqtt" not in body and body["status"] == "ok"
    assert (await ops.call(daemon.core, "mqtt.status", {})) == {"enabled": False, "state": "disabled"}
    await daemon.stop()


async def test_the_dashboard_settings_page_shows_state_and_backlog(nursery, tmp_path, broker):
    from tests.dashboard.helpers import logged_in

    daemon = await start_daemon(nursery, tmp_path, broker)
    await wait_for(lambda: daemon.core.service("mqtt").state == "connected", timeout=10)
    broker.stop()
    await daemon.core.hub.publish("device.online", {"device_id": "d1", "name": "n", "connector": "ws"})
    await wait_for(lambda: daemon.core.service("mqtt").state == "disconnected", timeout=10)
    async with logged_in(daemon) as (http, _csrf):
        page = (await http.get("/settings")).text
    state = re.search(r'id="mqtt-state">(.*?)</dd>', page, re.S).group(1)
    assert "disconnected" in state
    backlog = re.search(r'id="mqtt-backlog">(\d+) records', page).group(1)
    assert int(backlog) >= 1 and 'id="mqtt-error"' in page
    await daemon.stop()


async def test_mqtt_5_and_qos_0(nursery, tmp_path, broker, subscriber):
    daemon = await start_daemon(nursery, tmp_path, broker, protocol="5", qos=0)
    body = await published_one(daemon, subscriber)
    service = daemon.core.service("mqtt")
    await wait_for(lambda: service.acked_seq >= body["seq"])  # QoS 0: done once written
    assert service.status()["qos"] == 0
    await daemon.stop()


async def test_a_client_certificate_when_the_broker_wants_one(nursery, tmp_path):
    ca = make_ca(tmp_path / "ca")
    broker = Broker(tmp_path / "cert-broker", tls=ca, client_certificates=True).start()
    subscriber = await Subscriber(broker, f"{PREFIX}/#").start()
    try:
        without = await start_daemon(nursery, tmp_path / "without", broker, ca_file=str(ca.ca_file))
        service = without.core.service("mqtt")
        await wait_for(lambda: service.attempts >= 1, timeout=15)
        assert service.state == "tls_failed" and "client certificate" in service.last_error, service.last_error
        await without.stop()
        daemon = await start_daemon(nursery, tmp_path / "with", broker, ca_file=str(ca.ca_file),
                                    cert_file=str(ca.client_cert_file), key_file=str(ca.client_key_file))
        await published_one(daemon, subscriber)
        await daemon.stop()
    finally:
        subscriber.stop()
        broker.stop()


async def test_mqtt_5_receive_maximum_bounds_the_window(nursery, tmp_path):
    broker = Broker(tmp_path / "small-broker", max_inflight=5).start()
    subscriber = await Subscriber(broker, f"{PREFIX}/#").start()
    try:
        daemon = await start_daemon(nursery, tmp_path, broker, protocol="5")
        service = daemon.core.service("mqtt")
        await wait_for(lambda: service.state == "connected", timeout=10)
        assert service.connection.window == 5
        records = [await daemon.core.hub.publish("device.online", {"device_id": f"d{n}", "name": "n",
                                                                   "connector": "ws"}) for n in range(200)]
        await subscriber.wait_for(lambda ms: len(ms) >= 200)
        await wait_for(lambda: service.acked_seq >= records[-1].seq)
        assert service.state == "connected" and service.attempts == 0  # never more in flight than allowed
        await daemon.stop()
    finally:
        subscriber.stop()
        broker.stop()

"""Webhooks managed at runtime: the API (secret generated and shown once, sealed at rest), a
restart, the command line, the settings page; alerts reach webhooks as `alert` events."""

from __future__ import annotations

import json

import pytest
import trio

from gatewayd.journal.files import read_segment
from gatewayd.journal.reader import JournalReader
from tests.conftest import run_cli, wait_for

from ..dashboard.helpers import logged_in
from ..devices.helpers import api, create_device, open_websocket_url, register, ws_url
from .receiver import start_receiver

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def daemon_sections():
    return {"alerts": {"device_offline_after": 0.5, "check_interval": 0.1, "disk_free_below_percent": 0}}


async def test_added_through_the_api_it_survives_a_restart_and_gets_alerts(daemon, nursery):
    receiver = await start_receiver(nursery)
    daemon.core.service("webhooks").retry_first = 0.05
    response = await api(daemon, "POST", "/api/webhooks",
                         json={"url": receiver.url, "name": "ops", "events": ["alert", "status"],
                               "headers": {"Authorization": "Bearer t0ken"}})
    assert response.status_code == 201, response.text
    added = response.json()
    secret = added["secret"]
    assert len(secret) >= 32 and added["signed"] and added["headers"] == ["Authorization"]
    listed = (await api(daemon, "GET", "/api/webhooks")).json()["items"]
    assert [w["name"] for w in listed] == ["ops"] and "secret" not in listed[0]
    journal_text = b"".join(read_segment(p) for p in daemon.core.journal_dir.glob("segment-*"))
    assert b"webhook.added" in journal_text
    assert secret.encode() not in journal_text and b"t0ken" not in journal_text  # sealed at rest

    bad = await api(daemon, "POST", "/api/webhooks", json={"url": "ftp://x", "events": ["up"]})
    assert bad.status_code == 422 and "url" in bad.json()["message"]
    assert (await api(daemon, "POST", "/api/webhooks", json={"url": receiver.url, "name": "ops"})).status_code == 409
    assert (await api(daemon, "POST", "/api/webhooks", json={"url": receiver.url, "events": ["nope"]})
            ).status_code == 422

    await daemon.restart()
    daemon.core.service("webhooks").retry_first = 0.05
    device = await create_device(daemon, "pump")
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
    await receiver.wait_until(lambda _: any(b["event"] == "alert" for b in receiver.delivered()))
    alert = next(b for b in receiver.delivered() if b["event"] == "alert")
    assert alert["alert"]["kind"] == "device_offline" and alert["alert"]["state"] == "raised"
    assert alert["alert"]["subject"] == device["id"] and alert["comm"] is None
    assert all(r.signed_by(secret) and r.headers["authorization"] == "Bearer t0ken" for r in receiver.requests)
    statuses = [b for b in receiver.delivered() if b["event"] == "status"]
    assert statuses and statuses[0]["device_id"] == device["id"]

    test = await api(daemon, "POST", "/api/webhooks/ops/test")
    assert test.status_code == 200 and test.json()["ok"]
    assert receiver.requests[-1].json()["event"] == "test" and receiver.requests[-1].signed_by(secret)

    assert daemon.core.cursors.exists("webhook.ops")
    assert (await api(daemon, "DELETE", "/api/webhooks/ops")).status_code == 200
    await wait_for(lambda: not daemon.core.cursors.exists("webhook.ops"))
    assert (await api(daemon, "GET", "/api/webhooks")).json()["items"] == []
    assert (await api(daemon, "DELETE", "/api/webhooks/ops")).status_code == 404
    types = [r.type for r in JournalReader(daemon.core.journal_dir).records() if r.type.startswith("webhook.")]
    assert types == ["webhook.added", "webhook.removed"]


async def test_command_line_and_settings_page(daemon, nursery):
    receiver = await start_receiver(nursery)
    state = str(daemon.state_dir)

    def cli(*args):
        return run_cli(*args, "--state-dir", state)

    added = await trio.to_thread.run_sync(lambda: cli("webhook", "add", receiver.url, "--name", "erp",
                                                      "--events", "up,alert", "--batch", "--json"))
    assert added.returncode == 0, added.stderr
    hook = json.loads(added.stdout)
    assert hook["events"] == ["alert", "up"] and hook["batch"] and hook["secret"]
    tested = await trio.to_thread.run_sync(lambda: cli("webhook", "test", "erp"))
    assert tested.returncode == 0 and "ok: True" in tested.stdout
    listed = await trio.to_thread.run_sync(lambda: cli("webhook", "list"))
    assert "erp" in listed.stdout and receiver.url in listed.stdout

    async with logged_in(daemon) as (http, csrf):
        page = await http.get("/settings")
        assert 'data-webhook="erp"' in page.text and "Remove</button>" in page.text
        response = await http.post("/settings/webhooks", data={"csrf_token": csrf, "url": receiver.url,
                                                               "name": "crm", "events": "attendance"})
        assert response.status_code == 303 and response.headers["location"] == "/settings/webhooks/crm/added"
        added = await http.get(response.headers["location"])  # POST-redirect-GET: the secret, shown once
        assert added.status_code == 200 and 'id="webhook-secret"' in added.text
        again = await http.get(response.headers["location"])
        assert again.status_code == 410 and 'id="webhook-secret"' not in again.text
        response = await http.post("/settings/webhooks/crm/test", data={"csrf_token": csrf})
        assert response.status_code == 303
        response = await http.post("/settings/webhooks/crm/remove", data={"csrf_token": csrf})
        assert response.status_code == 303
        page = await http.get("/settings")
        assert 'data-webhook="crm"' not in page.text and "Webhook crm removed." in page.text

    removed = await trio.to_thread.run_sync(lambda: cli("webhook", "remove", "erp"))
    assert removed.returncode == 0, removed.stderr
    gone = await trio.to_thread.run_sync(lambda: cli("webhook", "remove", "erp"))
    assert gone.returncode == 1 and "not_found" in gone.stderr


async def test_a_webhook_removed_from_the_configuration_stops_and_forgets_its_cursor(daemon, nursery):
    from gatewayd import config

    receiver = await start_receiver(nursery)
    core = daemon.core
    service = core.service("webhooks")
    config.apply_reload(core.settings, config.from_mapping({"webhooks": [{"url": receiver.url, "name": "file"}]}))
    service.changed()
    await wait_for(lambda: core.cursors.exists("webhook.file"))
    listed = (await api(daemon, "GET", "/api/webhooks")).json()["items"]
    assert [(w["name"], w["source"], w["running"]) for w in listed] == [("file", "config", True)]
    refused = await api(daemon, "DELETE", "/api/webhooks/file")
    assert refused.status_code == 409 and "configuration file" in refused.json()["message"]
    config.apply_reload(core.settings, config.from_mapping({}))
    service.changed()
    await wait_for(lambda: not core.cursors.exists("webhook.file"))
    assert (await api(daemon, "GET", "/api/webhooks")).json()["items"] == []

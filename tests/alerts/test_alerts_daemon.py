"""Alerts in a running gatewayd: a real WebSocket device goes offline and comes back, a restart in
the middle, the API, the monitoring actions stream and the dashboard page."""

from __future__ import annotations

import json

from zoneinfo import ZoneInfo

import pytest
import trio
from trio_websocket import open_websocket_url

from gatewayd.journal.reader import JournalReader

from ..dashboard.helpers import logged_in
from ..devices.helpers import api, create_device, register, ws_url

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def daemon_sections():
    return {"alerts": {"device_offline_after": 1.0, "check_interval": 0.1, "disk_free_below_percent": 0}}


async def next_alert(subscription, timeout: float = 10.0):
    with trio.fail_after(timeout):
        return await subscription.receive.receive()


def alert_records(daemon) -> list[tuple[str, str]]:
    reader = JournalReader(daemon.core.journal_dir)
    return [(r.type, r.data["subject"]) for r in reader.records() if r.type.startswith("alert.")]


async def connect_and_leave(daemon, device) -> None:
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)


async def test_device_offline_then_back_gives_exactly_one_raised_and_one_cleared(daemon):
    device = await create_device(daemon, "pump")
    with daemon.core.hub.subscribe(accept=lambda r: r.type.startswith("alert.")) as alerts:
        await connect_and_leave(daemon, device)
        raised = await next_alert(alerts)
        assert (raised.type, raised.data["kind"], raised.data["subject"]) == ("alert.raised", "device_offline",
                                                                              device["id"])
        async with open_websocket_url(ws_url(daemon)) as ws:
            await register(ws, device)
            cleared = await next_alert(alerts)
            assert (cleared.type, cleared.data["id"]) == ("alert.cleared", raised.data["id"])
            await daemon.core.service("alerts").wait_checks(3)
    assert alert_records(daemon) == [("alert.raised", device["id"]), ("alert.cleared", device["id"])]


async def test_restart_while_offline_keeps_the_one_alert(daemon):
    device = await create_device(daemon, "meter")
    with daemon.core.hub.subscribe(accept=lambda r: r.type == "alert.raised") as alerts:
        await connect_and_leave(daemon, device)
        raised = await next_alert(alerts)
    await daemon.restart()
    await daemon.core.service("alerts").wait_checks(15)  # well past the threshold after the start
    assert alert_records(daemon) == [("alert.raised", device["id"])]
    response = await api(daemon, "GET", "/api/alerts", params={"state": "active"})
    assert response.status_code == 200
    (shown,) = response.json()["items"]
    assert (shown["id"], shown["kind"], shown["state"], shown["acknowledged"]) == (
        raised.data["id"], "device_offline", "raised", None)

    response = await api(daemon, "POST", f"/api/alerts/{shown['id']}/ack")
    assert response.status_code == 200 and response.json()["acknowledged"]["by"] == "apikey:tests"
    assert (await api(daemon, "POST", "/api/alerts/nope/ack")).status_code == 404
    assert (await api(daemon, "GET", "/api/alerts", params={"state": "bogus"})).status_code == 422

    with daemon.core.hub.subscribe(accept=lambda r: r.type == "alert.cleared") as alerts:
        async with open_websocket_url(ws_url(daemon)) as ws:
            await register(ws, device)
            await next_alert(alerts)
    assert (await api(daemon, "GET", "/api/alerts")).json()["items"] == []
    (cleared,) = (await api(daemon, "GET", "/api/alerts", params={"state": "cleared"})).json()["items"]
    assert cleared["id"] == raised.data["id"] and cleared["acknowledged"]["by"] == "apikey:tests"

    url = f"{daemon.ws_url}/monitor/actions?key={daemon.api_key}&since=1"
    seen = []
    async with open_websocket_url(url) as ws:
        with trio.fail_after(10):
            while "alert_cleared" not in seen:
                frame = json.loads(await ws.get_message())
                for action in frame if isinstance(frame, list) else [frame]:
                    if action.get("ActionType", "").startswith("alert_"):
                        seen.append(action["ActionType"])
                        assert action["Target"] == device["id"]
    assert seen == ["alert_raised", "alert_acknowledged", "alert_cleared"]
    assert alert_records(daemon) == [("alert.raised", device["id"]), ("alert.acknowledged", device["id"]),
                                     ("alert.cleared", device["id"])]


async def test_dashboard_alerts_page_lists_active_first_and_acknowledges(daemon):
    device = await create_device(daemon, "boiler")
    with daemon.core.hub.subscribe(accept=lambda r: r.type == "alert.raised") as alerts:
        await connect_and_leave(daemon, device)
        raised = await next_alert(alerts)
    async with logged_in(daemon) as (http, csrf):
        page = await http.get("/alerts")
        assert page.status_code == 200
        assert f'data-alert="{raised.data["id"]}"' in page.text and "Acknowledge</button>" in page.text
        assert page.text.index('id="active-alerts"') < page.text.index('id="cleared"')
        assert f'<a href="/devices/{device["id"]}" title="{device["id"]}">boiler</a>' in page.text
        response = await http.post(f"/alerts/{raised.data['id']}/ack", data={"csrf_token": csrf})
        assert response.status_code == 303
        page = await http.get("/alerts")
        assert "acknowledged by session:admin" in page.text and "Acknowledge</button>" not in page.text


async def test_a_terminal_clock_off_by_ten_minutes_raises_clock_skew(daemon):
    from datetime import datetime, timedelta

    from gatewayd import ops

    daemon.core.settings.alerts.terminal_clock_skew_seconds = 60
    await ops.call(daemon.core, "terminal.add", {"sn": "ZK0001", "tz": "Europe/Rome"})
    terminals = daemon.core.service("terminals")
    rome = datetime.now(ZoneInfo("Europe/Rome")).replace(tzinfo=None)
    terminals.read_clock("ZK0001", (rome + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S"))
    assert 540 < terminals.clock_readings["ZK0001"][0] < 660
    terminals.read_clock("ZK0002", "not a time")
    assert "ZK0002" not in terminals.clock_readings
    with daemon.core.hub.subscribe(accept=lambda r: r.type.startswith("alert.")) as alerts:
        raised = await next_alert(alerts)
        assert (raised.data["kind"], raised.data["subject"]) == ("clock_skew", "ZK0001")
        terminals.read_clock("ZK0001", datetime.now(ZoneInfo("Europe/Rome")).strftime("%Y-%m-%d %H:%M:%S"))
        cleared = await next_alert(alerts)
        assert (cleared.type, cleared.data["reason"]) == ("alert.cleared", "clock within the limit")

"""The dashboard in a real browser (Debian's Chromium, headless) against a real gatewayd with real
device clients. Screenshots of the main pages go to artifacts/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from gatewayd import ops
from tests.devices.helpers import open_websocket_url, receive_json, register, send_json, ws_url

from .browser import Page, missing
from .helpers import PASSWORD, set_password

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

SN = "ZX0006012345"
GUARDED = ["/devices", "/events", "/terminals", "/attendance", "/gateways", "/realtime", "/settings"]


async def ui_login(page: Page, base: str, password: str = PASSWORD) -> None:
    def login(p):
        p.goto(base + "/login")
        p.get_by_label("Password").fill(password)
        p.get_by_role("button", name="Log in").click()
    await page.do(login)


async def test_wrong_password_is_refused_and_every_page_needs_login(daemon, page):
    await set_password(daemon)
    base = daemon.base_url
    for path in GUARDED:
        url = await page.do(lambda p, path=path: (p.goto(base + path), p.url)[1])
        assert re.search(r"/login\?next=", url), (path, url)
    await page.screenshot("login")
    await ui_login(page, base, "not the password")
    await page.do(lambda p: expect(p.locator("#login-error")).to_have_text("Wrong user name or password."))
    assert "/login" in await page.do(lambda p: p.url)
    await ui_login(page, base)
    await page.do(lambda p: p.wait_for_url("**/devices"))


async def test_device_journey(daemon, page, new_page):
    await set_password(daemon)
    base = daemon.base_url
    await ui_login(page, base)

    def add_device(p):
        p.wait_for_url("**/devices")
        expect(p.get_by_text("No devices yet")).to_be_visible()
        p.get_by_role("link", name="Add device").click()
        p.get_by_label("Name").fill("Boiler room")
        p.get_by_label("Tags").fill("floor1, temperature")
        p.get_by_role("button", name="Create device").click()
        expect(p.get_by_role("heading", level=1)).to_have_text("Device created: Boiler room")
        return p.inner_text("#device-id"), p.inner_text("#device-token")

    device_id, token = await page.do(add_device)
    assert daemon.core.state.devices.get(device_id)["name"] == "Boiler room"
    await page.screenshot("device-created")

    events = await new_page()  # a window of its own: a background tab would be throttled
    await ui_login(events, base)
    await events.do(lambda p: p.wait_for_url("**/devices"))
    await events.do(lambda p: p.goto(base + "/events"))
    await events.do(lambda p: expect(p.locator("#stream-state")).to_have_text("live"))
    await page.do(lambda p: p.goto(base + "/devices"))
    badge = f'tr[data-device="{device_id}"] [data-role="status"]'
    await page.do(lambda p: expect(p.locator(badge)).to_have_text("Offline"))

    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, {"id": device_id}, token)
        # The list was loaded before the device connected: the badge turns Online without a reload.
        await page.do(lambda p: expect(p.locator(badge)).to_have_text("Online"))
        await page.do(lambda p: expect(p.locator(f'tr[data-device="{device_id}"] [data-role="last-seen"]'))
                      .to_have_text(re.compile("just now|s ago")))
        await page.screenshot("devices")
        await events.do(lambda p: expect(p.locator('#event-list tr[data-type="device_connected"]'))
                        .to_contain_text("Boiler room connected from 127.0.0.1"))

        # Pause the stream, let things happen, resume: what happened meanwhile shows up.
        await events.do(lambda p: p.get_by_role("button", name="Pause").click())
        await events.do(lambda p: expect(p.locator("#stream-state")).to_have_text("paused"))
        await send_json(ws, {"type": "event", "event": "door_open", "payload": {"zone": 2}, "id": 1})
        assert (await receive_json(ws))["type"] == "ack"
        assert await events.do(lambda p: p.locator('#event-list tr[data-type="device_event"]').count()) == 0
        await events.do(lambda p: p.get_by_role("button", name="Resume").click())
        await events.do(lambda p: expect(p.locator('#event-list tr[data-type="device_event"]'))
                        .to_contain_text("door_open"))

        await page.do(lambda p: p.goto(f"{base}/devices/{device_id}"))
        await page.do(lambda p: expect(p.locator("#device-status")).to_have_text("Online"))
        for i, value in enumerate((20.5, 21.0, 22.25)):
            await send_json(ws, {"type": "telemetry", "payload": {"temperature": value, "humidity": 40 + i,
                                                                  "label": "ok"}, "id": 10 + i})
            assert (await receive_json(ws))["type"] == "ack"
        await page.do(lambda p: expect(p.locator('#latest tr[data-field="temperature"] .value')).to_have_text("22.25"))
        await page.do(lambda p: expect(p.locator("#chart-temperature")).to_contain_text("max 22.25 °C"))
        await page.do(lambda p: expect(p.locator("#chart-humidity canvas")).to_be_visible())
        assert await page.do(lambda p: p.locator("#chart-label").count()) == 0  # not numeric: no chart

        def send_command(p):
            p.get_by_label("Command", exact=True).fill("reboot")
            p.get_by_label("Payload (JSON object)").fill('{"delay": 5}')
            p.get_by_role("button", name="Send command").click()
            expect(p.get_by_role("status")).to_contain_text("Command reboot queued")
        await page.do(send_command)
        command = await receive_json(ws)
        assert (command["type"], command["command"], command["payload"]) == ("command", "reboot", {"delay": 5})
        state = f'tr[data-command="{command["id"]}"] [data-role="state"]'
        await page.do(lambda p: expect(p.locator(state)).to_have_text(re.compile("queued|sent")))
        await send_json(ws, {"type": "command_result", "id": command["id"], "ok": True, "result": {"uptime": 0}})
        await page.do(lambda p: expect(p.locator(state)).to_have_text("acknowledged"))
        await page.do(lambda p: expect(p.locator(f'tr[data-command="{command["id"]}"] [data-role="result"]'))
                      .to_contain_text('"uptime":0'))
        await page.screenshot("device")
        await events.screenshot("events")

        phone = await new_page(390, 844)
        await ui_login(phone, base)
        await phone.do(lambda p: p.wait_for_url("**/devices"))
        await phone.screenshot("devices-phone")
        await phone.do(lambda p: p.goto(f"{base}/devices/{device_id}"))
        await phone.do(lambda p: expect(p.locator("#chart-temperature canvas")).to_be_visible())
        await phone.screenshot("device-phone")

    await page.do(lambda p: expect(p.locator("#device-status")).to_have_text("Offline"))


async def _terminal(daemon, body: dict) -> dict:
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        return (await client.post("/api/device-http", json=body)).json()


async def test_terminal_approval_and_csv_export(daemon, page):
    await set_password(daemon)
    base = daemon.base_url
    assert (await _terminal(daemon, {"cmd": "reg", "sn": SN, "devinfo": {"modelname": "AI518"}}))["result"] is False
    await ui_login(page, base)
    await page.do(lambda p: p.get_by_role("navigation", name="Main").get_by_role("link", name="Terminals").click())
    await page.do(lambda p: expect(p.locator("#pending")).to_contain_text(SN))
    await page.screenshot("terminals-pending")
    await page.do(lambda p: p.get_by_role("button", name=f"Approve {SN}").click())
    await page.do(lambda p: expect(p.locator("#accepted")).to_contain_text(SN))
    assert daemon.core.state.terminals.get(SN)["status"] == "accepted"

    records = [{"enrollid": 12, "time": "2026-06-12 09:15:30", "mode": 8, "inout": 0, "event": 0},
               {"enrollid": 7, "time": "2026-06-12 09:20:01", "mode": 1, "inout": 1, "event": 0}]
    reply = await _terminal(daemon, {"cmd": "sendlog", "sn": SN, "count": 2, "logindex": 0, "record": records})
    assert reply["result"] is True
    await page.do(lambda p: p.reload())
    await page.do(lambda p: expect(p.locator(f'#accepted tr[data-sn="{SN}"] [data-role="status"]')).to_have_text("Online"))
    await page.screenshot("terminals")
    await page.do(lambda p: p.goto(f"{base}/terminals/{SN}"))
    await page.do(lambda p: expect(p.locator("#no-commands")).to_be_visible())  # HTTP mode: none to offer
    await page.screenshot("terminal")

    def export(p):
        p.get_by_role("navigation", name="Main").get_by_role("link", name="Attendance").click()
        p.get_by_label("Terminal").select_option(SN)
        p.get_by_role("button", name="Show").click()
        expect(p.locator("#punches tbody tr")).to_have_count(2)
        with p.expect_download() as info:
            p.get_by_role("link", name="Download CSV").click()
        return info.value.suggested_filename, Path(info.value.path()).read_text()

    filename, text = await page.do(export)
    await page.screenshot("attendance")
    lines = text.strip().splitlines()
    assert filename.startswith("attendance-") and filename.endswith(".csv")
    assert lines[0].startswith("sn,enrollid,time") and len(lines) == 3
    assert {line.split(",")[1] for line in lines[1:]} == {"12", "7"}


async def test_gateways_monitor_and_settings(daemon, page):
    await set_password(daemon)
    base = daemon.base_url
    await ops.call(daemon.core, "gateway.add", {"eui": "b827ebfffe000001", "name": "roof"})
    created = await ops.call(daemon.core, "device.create", {"name": "meter"})
    await ui_login(page, base)
    await page.do(lambda p: p.goto(base + "/gateways"))
    await page.do(lambda p: expect(p.locator("#gateways")).to_contain_text("b827ebfffe000001"))
    await page.screenshot("gateways")

    await page.do(lambda p: p.goto(base + "/realtime"))
    await page.do(lambda p: expect(p.locator("#stream-state")).to_have_text("live"))
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, created)
        await send_json(ws, {"type": "telemetry", "payload": {"kwh": 12.5}, "id": 1})
        await receive_json(ws)
        row = "#comm-list tr[data-type='comm_rx']"
        await page.do(lambda p: expect(p.locator(row)).to_contain_text('{"kwh":12.5}'))
        await page.do(lambda p: expect(p.locator(f"{row} a[title='device {created['id']}']")).to_have_text("meter"))
        await page.do(lambda p: expect(p.locator("#comm-list tr[data-type='comm_join']")).to_have_count(1))
    await page.screenshot("realtime")

    def create_key(p):
        p.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
        p.get_by_label("Name of the new key").fill("reporting")
        p.get_by_role("button", name="Create API key").click()
        return p.inner_text("#api-key")

    key = await page.do(create_key)
    await page.screenshot("apikey-created")
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
        assert (await api.get("/api/devices")).status_code == 200
    await page.do(lambda p: p.goto(base + "/settings"))
    await page.do(lambda p: expect(p.locator("#keys")).to_contain_text("reporting"))
    assert key not in await page.do(lambda p: p.content())
    await page.screenshot("settings")

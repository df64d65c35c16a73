"""Real Time Monitor and Events in Chromium: names with ids on hover, rows that open to their frame,
filters by device/gateway/terminal/type, links to the subject's page, pause/resume keeping rows."""

from __future__ import annotations

import json

import httpx
import pytest

from gatewayd import ops
from tests.devices.helpers import open_websocket_url, receive_json, register, send_json, ws_url

from .browser import missing
from .helpers import set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

SN = "ZX0006099999"


async def _telemetry(ws, value: float, msg_id: int) -> None:
    await send_json(ws, {"type": "telemetry", "payload": {"kwh": value}, "id": msg_id})
    assert (await receive_json(ws))["type"] == "ack"


async def _live_page(daemon, page, path: str, device_name: str) -> dict:
    """Logs in, creates a device, opens the stream page at `path` and waits until it is live."""
    await set_password(daemon)
    device = await ops.call(daemon.core, "device.create", {"name": device_name})
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.goto(daemon.base_url + path))
    await page.do(lambda p: expect(p.locator("#stream-state")).to_have_text("live"))
    return device


async def test_realtime_names_frames_filters_and_pause(daemon, page):
    meter = await _live_page(daemon, page, "/realtime", "Water meter")
    rx = "#comm-list tr[data-type='comm_rx']"
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, meter)
        await _telemetry(ws, 12.5, 1)
        await page.do(lambda p: expect(p.locator(rx)).to_have_count(1))
        link = f"{rx} a[data-kind='device']"
        await page.do(lambda p: expect(p.locator(link)).to_have_text("Water meter"))
        await page.do(lambda p: expect(p.locator(link)).to_have_attribute("title", f"device {meter['id']}"))
        await page.do(lambda p: expect(p.locator(link)).to_have_attribute("href", f"/devices/{meter['id']}"))

        def open_frame(p):
            p.locator(rx).get_by_role("button", name="Show the full frame").click()
            return p.locator("#comm-list tr.frame pre").inner_text()
        frame = json.loads(await page.do(open_frame))
        assert frame["DevEui"] == meter["id"] and frame["CommType"] == "comm_rx"
        await page.screenshot("realtime-frame-open")

        def filter_rows(p):
            p.get_by_label("Device", exact=True).fill("no such device")
            expect(p.locator(rx)).to_be_hidden()
            expect(p.locator("#comm-list tr.frame")).to_be_hidden()
            p.get_by_label("Device", exact=True).fill("water")
            expect(p.locator(rx)).to_be_visible()
            p.get_by_label("Gateway", exact=True).fill("b827eb")
            expect(p.locator(rx)).to_be_hidden()
            p.get_by_label("Gateway", exact=True).fill("")
            p.get_by_label("Type", exact=True).select_option("comm_join")
            expect(p.locator(rx)).to_be_hidden()
            expect(p.locator("#comm-list tr[data-type='comm_join']")).to_be_visible()
            p.get_by_label("Type", exact=True).select_option("")
            p.get_by_label("Device", exact=True).fill("")
            expect(p.locator(rx)).to_be_visible()
        await page.do(filter_rows)

        await page.do(lambda p: p.get_by_role("button", name="Pause").click())
        await page.do(lambda p: expect(p.locator("#stream-state")).to_have_text("paused"))
        await _telemetry(ws, 13.0, 2)
        assert await page.do(lambda p: p.locator(rx).count()) == 1  # nothing new while paused, nothing lost
        await page.do(lambda p: p.get_by_role("button", name="Resume").click())
        await page.do(lambda p: expect(p.locator(rx)).to_have_count(2))
        await page.do(lambda p: expect(p.locator(rx).first).to_contain_text('{"kwh":13.0}'))
        await page.do(lambda p: expect(p.locator(rx).last).to_contain_text('{"kwh":12.5}'))

        await page.do(lambda p: p.locator(f"{rx} a[data-kind='device']").first.click())
        await page.do(lambda p: p.wait_for_url(f"**/devices/{meter['id']}"))


async def test_events_names_frames_filters_and_links(daemon, page):
    base = daemon.base_url
    meter = await _live_page(daemon, page, "/events", "Boiler")

    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, meter)
        connected = '#event-list tr[data-type="device_connected"]'
        await page.do(lambda p: expect(p.locator(connected)).to_contain_text("Boiler connected"))
        link = f"{connected} a[data-kind='device']"
        await page.do(lambda p: expect(p.locator(link)).to_have_text("Boiler"))
        await page.do(lambda p: expect(p.locator(link)).to_have_attribute("title", f"device {meter['id']}"))
    await ops.call(daemon.core, "gateway.add", {"eui": "b827ebfffe000002", "name": "roof"})
    async with httpx.AsyncClient(base_url=base) as client:
        await client.post("/api/device-http", json={"cmd": "reg", "sn": SN, "devinfo": {"modelname": "AI518"}})
    gateway_row = '#event-list tr[data-gateway*="b827ebfffe000002"]'
    terminal_row = f'#event-list tr[data-terminal*="{SN.lower()}"]'
    await page.do(lambda p: expect(p.locator(gateway_row).first).to_be_visible())
    await page.do(lambda p: expect(p.locator(terminal_row).first).to_be_visible())
    await page.do(lambda p: expect(p.locator(f"{terminal_row} a[data-kind='terminal']").first)
                  .to_have_attribute("href", f"/terminals/{SN}"))

    def open_frame(p):
        p.locator(connected).get_by_role("button", name="Show the full frame").click()
        return p.locator("#event-list tr.frame pre").inner_text()
    event = json.loads(await page.do(open_frame))
    assert event["type"] == "device_connected" and event["device_id"] == meter["id"]
    await page.screenshot("events-frame-open")

    def filters(p):
        p.get_by_label("Terminal", exact=True).fill(SN[-5:])
        expect(p.locator(terminal_row).first).to_be_visible()
        expect(p.locator(connected)).to_be_hidden()
        expect(p.locator(gateway_row).first).to_be_hidden()
        p.get_by_label("Terminal", exact=True).fill("")
        p.get_by_label("Gateway", exact=True).fill("roof")
        expect(p.locator(gateway_row).first).to_be_visible()
        expect(p.locator(connected)).to_be_hidden()
        p.get_by_label("Gateway", exact=True).fill("")
        p.get_by_label("Device", exact=True).fill("boil")
        expect(p.locator(connected)).to_be_visible()
        expect(p.locator(terminal_row).first).to_be_hidden()
        p.get_by_label("Device", exact=True).fill("")
        p.get_by_label("Type", exact=True).fill("device_disconnected")
        expect(p.locator(connected)).to_be_hidden()
        expect(p.locator('#event-list tr[data-type="device_disconnected"]')).to_be_visible()
        p.get_by_label("Type", exact=True).fill("")
    await page.do(filters)
    await page.do(lambda p: p.locator(f"{gateway_row} a[data-kind='gateway']").first.click())
    await page.do(lambda p: p.wait_for_url("**/gateways#gw-b827ebfffe000002"))

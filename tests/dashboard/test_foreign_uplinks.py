"""Uplinks of LoRaWAN devices that are not ours: marked on the Real Time Monitor and on /events,
and counted live on the gateways page."""

from __future__ import annotations

import pytest

from gatewayd import ops
from tests.lorawan.helpers import GW1, SimDevice, UdpGateway, free_udp_port

from .browser import missing
from .helpers import set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

KEY = "2b7e151628aed2a6abf7158809cf4f3c"


@pytest.fixture
def daemon_sections() -> dict:
    return {"server": {"udp_port": free_udp_port(), "udp_host": "127.0.0.1"}}


async def test_unknown_devices_frames_are_shown_and_counted(daemon, page, new_page):
    await set_password(daemon)
    base = daemon.base_url
    await ops.call(daemon.core, "gateway.add", {"eui": GW1, "name": "roof"})
    stranger = SimDevice.abp("01020304", KEY, KEY)
    await ui_login(page, base)
    await page.do(lambda p: p.wait_for_url("**/devices"))
    await page.do(lambda p: p.goto(base + "/gateways"))
    foreign = f'#gateways tr[data-eui="{GW1}"] [data-role="foreign"]'
    await page.do(lambda p: expect(p.locator(foreign)).to_have_text("0"))
    await page.do(lambda p: expect(p.locator("#live-state")).to_contain_text("live"))

    monitor = await new_page()
    await ui_login(monitor, base)
    await monitor.do(lambda p: p.wait_for_url("**/devices"))
    await monitor.do(lambda p: p.goto(base + "/realtime"))
    await monitor.do(lambda p: expect(p.locator("#stream-state")).to_have_text("live"))
    events = await new_page()
    await ui_login(events, base)
    await events.do(lambda p: p.wait_for_url("**/devices"))
    await events.do(lambda p: p.goto(base + "/events"))
    await events.do(lambda p: expect(p.locator("#stream-state")).to_have_text("live"))

    async with UdpGateway(daemon.udp_port) as gw:
        await gw.push(stranger.uplink(1, b"x"))
        await gw.push(stranger.uplink(1, b"y"))

    await page.do(lambda p: expect(p.locator(foreign)).to_have_text("2"))
    assert daemon.core.state.lorawan.gateways[GW1]["foreign"] == 2
    await page.screenshot("gateways-foreign")

    row = "#comm-list tr[data-foreign=true]"
    await monitor.do(lambda p: expect(p.locator(row)).to_have_count(2))
    await monitor.do(lambda p: expect(p.locator(row).first).to_contain_text("unknown device 01020304"))
    await monitor.do(lambda p: expect(p.locator(row).first.locator("a")).to_have_text("roof"))
    await monitor.do(lambda p: p.get_by_label("Device", exact=True).fill("unknown"))
    await monitor.do(lambda p: expect(p.locator("#comm-list tr[data-type]:visible")).to_have_count(2))
    await monitor.screenshot("realtime-foreign")

    line = '#event-list tr[data-type="lorawan_foreign_uplink"]'
    await events.do(lambda p: expect(p.locator(line)).to_have_count(2))
    await events.do(lambda p: expect(p.locator(line).first)
                    .to_contain_text("uplink from an unknown device, DevAddr 01020304 (no device of ours has this DevAddr)"))
    await events.do(lambda p: p.get_by_label("Gateway", exact=True).fill("roof"))
    await events.do(lambda p: expect(p.locator(f"{line}:visible")).to_have_count(2))

    # From the gateway's count to its frames on the monitor, filtered.
    await page.do(lambda p: p.locator(foreign).click())
    await page.do(lambda p: expect(p.get_by_label("Device", exact=True)).to_have_value("unknown"))
    await page.do(lambda p: expect(p.get_by_label("Gateway", exact=True)).to_have_value(GW1))

    phone = await new_page(390, 844)
    await ui_login(phone, base)
    await phone.do(lambda p: p.wait_for_url("**/devices"))
    await phone.do(lambda p: p.goto(base + "/gateways"))
    await phone.do(lambda p: expect(p.locator(foreign)).to_have_text("2"))
    await phone.screenshot("gateways-phone")

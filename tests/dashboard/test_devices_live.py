"""The devices list follows devices added and deleted elsewhere: empty state and count, live."""

from __future__ import annotations

import contextlib

import pytest

from gatewayd import ops
from tests.devices.helpers import open_websocket_url, register, ws_url

from .browser import missing
from .helpers import set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402


async def test_empty_state_and_count_follow_devices_added_elsewhere(daemon, page):
    await set_password(daemon)
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.wait_for_url("**/devices"))
    await page.do(lambda p: expect(p.get_by_text("No devices yet")).to_be_visible())
    await page.do(lambda p: expect(p.locator("#device-count")).to_have_text("0 devices"))
    await page.do(lambda p: expect(p.locator("#devices")).to_be_hidden())

    first = await ops.call(daemon.core, "device.create", {"name": "Pump"})
    await page.do(lambda p: expect(p.locator("#device-count")).to_have_text("1 device"))
    await page.do(lambda p: expect(p.get_by_text("No devices yet")).to_be_hidden())
    await page.do(lambda p: expect(p.locator(f'#devices tr[data-device="{first["id"]}"]')).to_contain_text("Pump"))
    await ops.call(daemon.core, "device.create", {"name": "Valve"})
    await page.do(lambda p: expect(p.locator("#device-count")).to_have_text("2 devices"))
    await page.screenshot("devices-live-count")

    await ops.call(daemon.core, "device.delete", {"device_id": first["id"], "actor": "test"})
    await page.do(lambda p: expect(p.locator("#device-count")).to_have_text("1 device"))
    await page.do(lambda p: expect(p.locator(f'#devices tr[data-device="{first["id"]}"]')).to_have_count(0))


async def test_live_updates_respect_the_filters(daemon, page):
    await set_password(daemon)
    created = [await ops.call(daemon.core, "device.create", {"name": f"Meter {i}"}) for i in range(3)]
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.wait_for_url("**/devices"))
    await page.do(lambda p: p.get_by_label("Status").select_option("offline"))
    await page.do(lambda p: expect(p.locator("#devices tbody tr:not([hidden])")).to_have_count(3))
    await page.do(lambda p: expect(p.locator("#live-state")).to_have_text("· live"))
    async with contextlib.AsyncExitStack() as stack:
        for device in created:  # each one online: its row leaves the "offline" view, in place
            ws = await stack.enter_async_context(open_websocket_url(ws_url(daemon)))
            await register(ws, device, device["token"])
        await page.do(lambda p: expect(p.locator("#devices tbody tr:not([hidden])")).to_have_count(0))
        await page.do(lambda p: expect(p.locator("#no-match")).to_be_visible())
        await page.do(lambda p: p.get_by_label("Status").select_option("online"))
        await page.do(lambda p: expect(p.locator("#devices tbody tr:not([hidden])")).to_have_count(3))
        await page.do(lambda p: expect(p.locator("#no-match")).to_be_hidden())

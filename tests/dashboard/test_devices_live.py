"""The devices list follows devices added and deleted elsewhere: empty state and count, live."""

from __future__ import annotations

import pytest

from gatewayd import ops

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

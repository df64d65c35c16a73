"""Every page is reachable from the main navigation, at desktop and phone width; the alerts,
MQTT and webhook status are where the navigation says."""

from __future__ import annotations

import pytest

from .browser import missing
from .helpers import set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

HEADINGS = {"Devices": "Devices", "Events": "Event stream", "Terminals": "Attendance terminals",
            "Attendance": "Attendance", "Gateways": "LoRa gateways", "Alerts": "Alerts",
            "Real Time Monitor": "Real Time Monitor", "Settings": "Settings"}


@pytest.mark.parametrize("width, height", [(1280, 860), (390, 844)])
async def test_main_navigation_reaches_every_page(daemon, new_page, width, height):
    await set_password(daemon)
    page = await new_page(width, height)
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.wait_for_url("**/devices"))

    def visit(p):
        reached = {}
        for link in HEADINGS:
            p.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True).click()
            expect(p.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True)) \
                .to_have_attribute("aria-current", "page")
            reached[link] = p.get_by_role("heading", level=1).first.inner_text().strip()
        return reached
    reached = await page.do(visit)
    assert {k: v.startswith(HEADINGS[k]) for k, v in reached.items()} == {k: True for k in HEADINGS}, reached

    def settings_sections(p):
        p.get_by_role("navigation", name="Sections of this page").get_by_role("link", name="MQTT status").click()
        expect(p.locator("#mqtt")).to_contain_text("Off. Set mqtt.url")
        expect(p.locator("#mqtt")).to_be_in_viewport()
        p.get_by_role("link", name="Webhooks").click()
        expect(p.locator("#webhooks")).to_be_in_viewport()
    await page.do(settings_sections)
    await page.screenshot(f"settings-{width}")

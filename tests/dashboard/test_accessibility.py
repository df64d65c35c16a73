"""Every dashboard page in Chromium: text and badges at 4.5:1 contrast or better, a focus ring that
shows on light backgrounds, and 24 px touch targets at phone width."""

from __future__ import annotations

import httpx
import pytest

from gatewayd import ops

from .a11y import CONTRAST_JS, TARGETS_JS
from .browser import missing
from .helpers import set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

SN = "ZX0006011111"
ACCEPTED = "ZX0006022222"  # with a user and a punch


async def _pages(daemon) -> list[str]:
    device = await ops.call(daemon.core, "device.create", {"name": "Boiler", "tags": ["floor1"]})
    disabled = await ops.call(daemon.core, "device.create", {"name": "Spare"})
    await ops.call(daemon.core, "device.disable", {"device_id": disabled["id"], "actor": "test"})
    await ops.call(daemon.core, "gateway.add", {"eui": "b827ebfffe000003", "name": "roof"})
    await ops.call(daemon.core, "terminal.add", {"sn": ACCEPTED})
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        await client.post("/api/device-http", json={"cmd": "reg", "sn": SN})
        await client.post("/api/device-http", json={"cmd": "senduser", "sn": ACCEPTED, "enrollid": 4, "name": "Ann",
                                                    "backupnum": 11, "admin": 1, "record": "4242"})
        await client.post("/api/device-http", json={"cmd": "sendlog", "sn": ACCEPTED, "count": 1, "logindex": 0,
                                                    "record": [{"enrollid": 4, "time": "2026-06-12 09:15:30"}]})
    lorawan = await ops.call(daemon.core, "device.create", {"name": "Meter", "lorawan": {
        "dev_eui": "70b3d57ed0000009", "app_key": "2b7e151628aed2a6abf7158809cf4f3c"}})
    return ["/devices", "/devices/new", f"/devices/{device['id']}", f"/devices/{lorawan['id']}",
            f"/devices/{device['id']}/connect", "/devices/import", "/events", "/terminals", f"/terminals/{SN}",
            f"/terminals/{SN}/reject", f"/terminals/{ACCEPTED}",
            "/attendance", "/gateways", "/realtime", "/alerts", "/settings"]


async def _contrast(page) -> list[str]:
    return await page.do(lambda p: p.evaluate(CONTRAST_JS, 4.5))


async def test_contrast_on_every_page(daemon, page):
    await set_password(daemon)
    await page.do(lambda p: p.goto(daemon.base_url + "/login"))
    failures = {"/login": await _contrast(page)}
    paths = await _pages(daemon)
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.wait_for_url("**/devices"))
    for path in paths:
        await page.do(lambda p, path=path: p.goto(daemon.base_url + path))
        failures[path] = await _contrast(page)
    found = [f"{path}: {failure}" for path, items in failures.items() for failure in items]
    assert not found, "\n".join(found)


async def test_focus_ring_is_visible_on_light_backgrounds(daemon, page):
    await set_password(daemon)
    await ui_login(page, daemon.base_url)

    def ring(p):
        p.wait_for_url("**/devices")
        p.get_by_label("Search").focus()
        p.keyboard.press("Shift+Tab")  # keyboard focus: :focus-visible applies
        p.keyboard.press("Tab")
        return p.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }""")
    style, width, color = await page.do(ring)
    assert style != "none" and float(width.rstrip("px")) >= 2, (style, width)
    rgb = [int(x) for x in color[color.index("(") + 1:color.index(")")].split(",")[:3]]

    def lum(c):
        f = [(v / 255) / 12.92 if v / 255 <= 0.03928 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * f[0] + 0.7152 * f[1] + 0.0722 * f[2]
    assert (1.05) / (lum(rgb) + 0.05) >= 3, color  # against white: a non-text contrast of 3:1
    await page.screenshot("focus-ring")


async def test_touch_targets_at_phone_width(daemon, new_page):
    await set_password(daemon)
    phone = await new_page(390, 844)
    await phone.do(lambda p: p.goto(daemon.base_url + "/login"))
    failures = {"/login": await phone.do(lambda p: p.evaluate(TARGETS_JS, 24))}
    paths = await _pages(daemon)
    await ui_login(phone, daemon.base_url)
    await phone.do(lambda p: p.wait_for_url("**/devices"))
    for path in paths:
        await phone.do(lambda p, path=path: p.goto(daemon.base_url + path))
        failures[path] = await phone.do(lambda p: p.evaluate(TARGETS_JS, 24))
    await phone.screenshot("events-phone")
    found = [f"{path}: {failure}" for path, items in failures.items() for failure in items]
    assert not found, "\n".join(found)

"""Attendance in Chromium: code names by default, newest punch first, a From-after-To range refused."""

from __future__ import annotations

import httpx
import pytest

from .browser import missing
from .helpers import set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

SN = "ZX0006054321"


@pytest.fixture
def daemon_sections():
    return {"terminals": {"auto_accept": True}}


async def test_names_order_and_a_reversed_range(daemon, page):
    await set_password(daemon)
    records = [{"enrollid": 12, "time": "2026-06-12 09:15:30", "mode": 8, "inout": 0, "event": 0},
               {"enrollid": 7, "time": "2026-06-12 17:20:01", "mode": 1, "inout": 1, "event": 0}]
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        assert (await client.post("/api/device-http", json={"cmd": "reg", "sn": SN}))
        reply = await client.post("/api/device-http", json={"cmd": "sendlog", "sn": SN, "count": 2, "logindex": 0,
                                                            "record": records})
        assert reply.json()["result"] is True
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.goto(daemon.base_url + "/attendance"))
    rows = "#punches tbody tr"
    await page.do(lambda p: expect(p.locator(rows)).to_have_count(2))
    # Newest first; codes named without any configured table.
    await page.do(lambda p: expect(p.locator(rows).nth(0)).to_contain_text("17:20:01"))
    await page.do(lambda p: expect(p.locator(rows).nth(0)).to_contain_text("fingerprint"))
    await page.do(lambda p: expect(p.locator(rows).nth(0)).to_contain_text("out"))
    await page.do(lambda p: expect(p.locator(rows).nth(1)).to_contain_text("face"))
    await page.do(lambda p: expect(p.locator(rows).nth(1)).to_contain_text("normal"))
    await page.screenshot("attendance-named")

    def reversed_range(p):
        p.get_by_label("From").fill("2026-06-13")
        p.get_by_label("To").fill("2026-06-12")
        p.get_by_role("button", name="Show").click()
        expect(p.get_by_role("alert")).to_contain_text("after")
        expect(p.get_by_label("From")).to_have_value("2026-06-13")  # what was typed stays
        expect(p.locator(rows)).to_have_count(0)
    await page.do(reversed_range)
    await page.screenshot("attendance-reversed-range")


async def test_new_punches_appear_live_with_person_names(daemon, new_page):
    await set_password(daemon)
    await daemon.core.hub.publish("push.users", {"sn": SN, "users": [{"enrollid": 12, "name": "Ada Lovelace"}]})
    first = [{"enrollid": 7, "time": "2026-06-12 08:00:00", "mode": 1, "inout": 0, "event": 0}]
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        await client.post("/api/device-http", json={"cmd": "reg", "sn": SN})
        await client.post("/api/device-http", json={"cmd": "sendlog", "sn": SN, "count": 1, "logindex": 0,
                                                    "record": first})
        phone = await new_page(390, 844)
        await ui_login(phone, daemon.base_url)
        await phone.do(lambda p: p.wait_for_url("**/devices"))
        await phone.do(lambda p: p.goto(daemon.base_url + f"/attendance?sn={SN}"))
        rows = "#punches tbody tr"
        await phone.do(lambda p: expect(p.locator(rows)).to_have_count(1))
        await phone.do(lambda p: expect(p.locator("#live-state")).to_have_text("· live"))
        later = [{"enrollid": 12, "time": "2026-06-12 12:30:00", "mode": 3, "inout": 1, "event": 0},
                 {"enrollid": 9, "time": "2026-06-12 12:31:00", "mode": 3, "inout": 0, "event": 0}]
        reply = await client.post("/api/device-http", json={"cmd": "sendlog", "sn": SN, "count": 2, "logindex": 1,
                                                            "record": later})
        assert reply.json()["result"] is True
    await phone.do(lambda p: expect(p.locator(rows)).to_have_count(3))
    # Newest first; a name from the terminal's user list (the id on hover), else the enroll id.
    await phone.do(lambda p: expect(p.locator(rows).nth(0)).to_contain_text("12:31:00"))
    await phone.do(lambda p: expect(p.locator(rows).nth(0).locator("td").nth(2)).to_have_text("9"))
    person = await phone.do(lambda p: p.locator(rows).nth(1).get_by_text("Ada Lovelace").get_attribute("title"))
    assert person == "enroll id 12"
    await phone.do(lambda p: expect(p.locator("#punch-count")).to_contain_text("3 punches."))
    await phone.screenshot("attendance-live-phone")

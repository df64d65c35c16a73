"""Device forms in Chromium: errors next to the field with the input kept, JSON checked before
sending, secrets shown once, LoRaWAN devices added from the page, and no form sent twice by a
reload or Back (POST-redirect-GET)."""

from __future__ import annotations

import re

import pytest

from gatewayd import ops
from gatewayd.secrets_ import hash_token

from .browser import SCREENSHOTS, missing
from .helpers import set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

APP_KEY = "2b7e151628aed2a6abf7158809cf4f3c"


async def _logged_in(daemon, page):
    await set_password(daemon)
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.wait_for_url("**/devices"))


async def test_command_form_checks_json_first_and_keeps_what_was_typed(daemon, page):
    device = await ops.call(daemon.core, "device.create", {"name": "Boiler"})
    await _logged_in(daemon, page)
    posts = []
    await page.do(lambda p: p.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None))
    await page.do(lambda p: p.goto(f"{daemon.base_url}/devices/{device['id']}"))

    def bad_json(p):
        p.get_by_label("Command", exact=True).fill("reboot")
        p.get_by_label("Payload (JSON object)").fill('{"delay": 5')
        p.get_by_role("button", name="Send command").click()
        expect(p.locator("#payload-error")).to_contain_text("Not valid JSON")
        expect(p.get_by_label("Payload (JSON object)")).to_have_attribute("aria-invalid", "true")
        p.get_by_label("Payload (JSON object)").fill("[1, 2]")
        p.get_by_role("button", name="Send command").click()
        expect(p.locator("#payload-error")).to_have_text('The payload must be a JSON object, e.g. {"delay": 5}')
        p.get_by_label("Payload (JSON object)").press("End")
        p.keyboard.type(" ")
        expect(p.locator("#payload-error")).to_have_text("")  # typing clears it
    await page.do(bad_json)
    assert posts == []  # the browser refused it before sending

    # A name the server refuses: the error sits next to the field, both fields keep their text.
    def bad_name(p):
        p.get_by_label("Command", exact=True).fill("re boot!")
        p.get_by_label("Payload (JSON object)").fill('{"delay": 7}')
        p.get_by_role("button", name="Send command").click()
        p.wait_for_url(re.compile(r"/devices/[^/]+#commands$"))
        expect(p.locator("#command-error")).to_contain_text("command name")
        expect(p.get_by_label("Command", exact=True)).to_have_value("re boot!")
        expect(p.get_by_label("Payload (JSON object)")).to_have_value('{"delay": 7}')
        expect(p.get_by_label("Command", exact=True)).to_be_focused()
    await page.do(bad_name)
    await page.screenshot("device-command-error")

    def send_then_reload_and_back(p):
        p.get_by_label("Command", exact=True).fill("reboot")
        p.get_by_role("button", name="Send command").click()
        expect(p.get_by_role("status")).to_contain_text("Command reboot queued")
        p.reload()
        p.go_back()
        p.go_forward()
    await page.do(send_then_reload_and_back)
    assert len(daemon.core.state.commands.for_device(device["id"])) == 1  # sent once
    assert len(posts) == 2


async def test_rotated_token_is_shown_once(daemon, page):
    device = await ops.call(daemon.core, "device.create", {"name": "Boiler"})
    await _logged_in(daemon, page)

    def rotate(p):
        p.goto(f"{daemon.base_url}/devices/{device['id']}")
        p.get_by_role("link", name="Rotate token").click()
        p.get_by_role("button", name="Rotate token").click()
        expect(p.get_by_role("heading", level=1)).to_have_text("New token for Boiler")
        token = p.inner_text("#device-token")
        p.reload()
        expect(p.get_by_text("this page has been shown already")).to_be_visible()
        return token, p.content()
    token, after_reload = await page.do(rotate)
    assert token.startswith("tok_") and token not in after_reload
    # The reload did not rotate again: the token shown is the one that works.
    assert daemon.core.state.devices.get(device["id"])["token_hash"] == hash_token(token)


async def test_add_lorawan_devices_with_keys_checked_and_never_shown_again(daemon, page, new_page):
    await _logged_in(daemon, page)
    await page.do(lambda p: p.goto(f"{daemon.base_url}/devices/new"))

    def short_key(p):
        p.get_by_label("Name").fill("Pump meter")
        p.get_by_label("LoRaWAN").check()
        p.get_by_label("DevEUI").fill("70b3d57ed0000001")
        p.locator("#app_key").fill(APP_KEY[:30])
        p.get_by_role("button", name="Create device").click()
        expect(p.locator("#app_key-error")).to_have_text("AppKey: 32 hexadecimal digits (16 bytes)")
        expect(p.get_by_label("DevEUI")).not_to_have_attribute("aria-invalid", "true")
    await page.do(short_key)
    assert daemon.core.state.devices.devices == {}

    first = await ops.call(daemon.core, "device.create", {"name": "Other", "lorawan": {
        "dev_eui": "70b3d57ed0000001", "app_key": APP_KEY}})

    def taken_eui(p):
        p.locator("#app_key").fill(APP_KEY)
        p.get_by_label("Class").select_option("C")
        p.get_by_role("button", name="Create device").click()
        p.wait_for_url("**/devices/new")
        expect(p.locator("#dev_eui-error")).to_contain_text("already exists")
        expect(p.get_by_label("Name")).to_have_value("Pump meter")
        expect(p.locator("#app_key")).to_have_value(APP_KEY)  # the input is kept
        expect(p.get_by_label("Class")).to_have_value("C")
    await page.do(taken_eui)
    await page.screenshot("device-new-lorawan-error")

    def created(p):
        p.get_by_label("DevEUI").fill("70-b3-d5-7e-d0-00-00-02")
        p.get_by_role("button", name="Create device").click()
        expect(p.get_by_role("status")).to_contain_text("Its keys are stored sealed and are not shown again")
        return p.url, p.content()
    url, html = await page.do(created)
    assert APP_KEY not in html.lower()
    device_id = url.rsplit("/", 1)[1]
    lorawan = daemon.core.state.lorawan.devices["70b3d57ed0000002"]
    assert lorawan["device_id"] == device_id and lorawan["activation"] == "otaa"
    assert lorawan["settings"]["class"] == "C" and first["id"] != device_id

    phone = await new_page(390, 844)
    await ui_login(phone, daemon.base_url)
    await phone.do(lambda p: p.wait_for_url("**/devices"))

    def abp(p):
        p.goto(f"{daemon.base_url}/devices/new")
        p.get_by_label("Name").fill("Door sensor")
        p.get_by_label("LoRaWAN").check()
        p.get_by_label("ABP").check()
        expect(p.locator("#app_key")).to_be_hidden()
        p.get_by_label("DevEUI").fill("70b3d57ed0000003")
        p.get_by_label("DevAddr").fill("26011bda")
        p.get_by_label("NwkSKey").fill(APP_KEY)
        p.get_by_label("AppSKey").fill("zz" + APP_KEY[2:])
        p.get_by_role("button", name="Create device").click()
        expect(p.locator("#app_s_key-error")).to_have_text("AppSKey: 32 hexadecimal digits (16 bytes)")
        p.screenshot(path=str(SCREENSHOTS / "device-new-abp-phone.png"), full_page=True)
        p.get_by_label("AppSKey").fill(APP_KEY[::-1])
        p.get_by_role("button", name="Create device").click()
        expect(p.get_by_role("status")).to_contain_text("LoRaWAN, ABP")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await phone.do(abp)
    assert daemon.core.state.lorawan.devices["70b3d57ed0000003"]["dev_addr"] == "26011bda"


async def test_a_refused_login_is_not_sent_again_by_a_reload(daemon, page):
    await set_password(daemon)
    posts = []
    await page.do(lambda p: p.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None))
    await ui_login(page, daemon.base_url, "not the password")
    await page.do(lambda p: expect(p.locator("#login-error")).to_have_text("Wrong user name or password."))
    await page.do(lambda p: p.reload())
    await page.do(lambda p: expect(p.get_by_label("Password")).to_be_visible())
    assert len(posts) == 1

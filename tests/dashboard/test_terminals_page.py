"""Terminals in Chromium: a new pending terminal and its held punches appear live, Reject asks first
and says what it drops, approval of a terminal that has just called in shows it online, and an
HTTP-mode terminal is offered no command it cannot receive."""

from __future__ import annotations

import re

import httpx
import pytest

from gatewayd import ops

from ..terminals.termsim import SimTerminal, punches
from .browser import SCREENSHOTS, missing
from ..conftest import wait_for
from .helpers import logged_in, set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402


async def test_pending_terminal_live_then_approved_online(daemon, page):
    await set_password(daemon)
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.wait_for_url("**/devices"))
    await page.do(lambda p: p.goto(daemon.base_url + "/terminals"))
    await page.do(lambda p: expect(p.locator("#pending-count")).to_have_text("0"))
    await page.do(lambda p: expect(p.locator("#pending-empty")).to_be_visible())

    sim = SimTerminal("LIVE0001")
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        await sim.post(client, sim.reg_body())
        row = '#pending tr[data-sn="LIVE0001"]'
        await page.do(lambda p: expect(p.locator(row)).to_be_visible())
        await page.do(lambda p: expect(p.locator("#pending-count")).to_have_text("1"))
        await page.do(lambda p: expect(p.locator("#pending-empty")).to_be_hidden())
        await sim.post(client, sim.sendlog_body(punches(3)))
        await page.do(lambda p: expect(p.locator(f'{row} [data-role="held"]')).to_have_text("3"))
        await page.screenshot("terminals-pending-live")

        def reject_then_cancel(p):
            p.get_by_role("link", name="Reject LIVE0001").click()
            p.wait_for_url("**/terminals/LIVE0001/reject")
            expect(p.get_by_role("heading", name="Reject terminal LIVE0001?")).to_be_visible()
            expect(p.locator("main")).to_contain_text("The 3 punches kept while it waited are dropped")
            expect(p.get_by_role("button", name="Reject and drop 3 punches")).to_be_visible()
            p.screenshot(path=str(SCREENSHOTS / "terminals-reject-confirm.png"))
            p.get_by_role("link", name="Cancel").click()
            p.wait_for_url(re.compile(r".*/terminals$"))
        await page.do(reject_then_cancel)
        assert daemon.core.state.terminals.get("LIVE0001")["status"] == "pending"

        def approve(p):
            p.get_by_role("button", name="Approve LIVE0001").click()
            p.wait_for_url(re.compile(r".*/terminals$"))
            accepted = p.locator('#accepted tr[data-sn="LIVE0001"]')
            expect(accepted.locator('[data-role="status"]')).to_have_text("Online")  # it has just called in
            expect(p.locator("#pending-count")).to_have_text("0")
        await page.do(approve)
        await page.screenshot("terminals-approved-online")

    # An HTTP-mode terminal is offered no commands, and the form handler refuses them.
    await page.do(lambda p: p.goto(daemon.base_url + "/terminals/LIVE0001"))
    await page.do(lambda p: expect(p.locator("#no-commands")).to_be_visible())
    await page.do(lambda p: expect(p.get_by_role("button", name="Open door")).to_have_count(0))
    async with logged_in(daemon, set_it=False) as (http, csrf):
        refused = await http.post("/terminals/LIVE0001/command", data={"csrf_token": csrf, "action": "door"})
        assert refused.status_code == 303 and not await ops.call(daemon.core, "terminal.commands", {"sn": "LIVE0001"})
    # One not heard from yet (or on WebSocket) is offered the cmd/ret commands.
    await ops.call(daemon.core, "terminal.add", {"sn": "WSCMD001"})
    await page.do(lambda p: p.goto(daemon.base_url + "/terminals/WSCMD001"))
    await page.do(lambda p: expect(p.get_by_role("button", name="Open door")).to_be_visible())
    await page.do(lambda p: expect(p.get_by_role("button", name="Read the user list")).to_be_visible())


async def test_reject_at_phone_width(daemon, new_page):
    await set_password(daemon)
    phone = await new_page(390, 844)
    await ui_login(phone, daemon.base_url)
    await phone.do(lambda p: p.wait_for_url("**/devices"))
    await phone.do(lambda p: p.goto(daemon.base_url + "/terminals"))
    sim = SimTerminal("PHONE001")
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        await sim.post(client, sim.sendlog_body(punches(1)))
    await phone.do(lambda p: expect(p.locator('#pending tr[data-sn="PHONE001"] [data-role="held"]')).to_have_text("1"))
    await phone.screenshot("terminals-pending-phone")

    def reject(p):
        p.get_by_role("link", name="Reject PHONE001").click()
        expect(p.locator("main")).to_contain_text("The 1 punch kept while it waited is dropped")
        p.get_by_role("button", name="Reject and drop 1 punch").click()
        p.wait_for_url(re.compile(r".*/terminals$"))
        expect(p.locator('#pending tr[data-sn="PHONE001"]')).to_have_count(0)
        expect(p.locator("#pending-empty")).to_be_visible()
    await phone.do(reject)
    assert daemon.core.state.terminals.get("PHONE001")["status"] == "rejected"
    assert daemon.core.service("terminals").held_count("PHONE001") == 0


async def test_user_list_with_names_on_the_terminal_and_attendance_pages(daemon, page, nursery):
    await set_password(daemon)
    await ops.call(daemon.core, "terminal.add", {"sn": "USERS001"})
    sim = SimTerminal("USERS001", users={3: {"name": "Grace Hopper", "backupnum": 0, "admin": 1, "record": ""},
                                         5: {"name": "Linus", "backupnum": 11, "admin": 0, "record": ""}})
    nursery.start_soon(sim.run_ws, daemon.ws_url + "/ws")
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.wait_for_url("**/devices"))
    await page.do(lambda p: p.goto(daemon.base_url + "/terminals/USERS001"))
    await page.do(lambda p: expect(p.locator("#users")).to_contain_text("No users known yet"))
    await page.do(lambda p: p.get_by_role("button", name="Read the user list").click())
    await wait_for(lambda: len(daemon.core.state.terminal_users.users("USERS001")) == 2, timeout=10)
    await page.do(lambda p: p.goto(daemon.base_url + "/terminals/USERS001"))  # a full load (not a #fragment)
    grace = '#user-list tr[data-enrollid="3"]'
    await page.do(lambda p: expect(p.locator(grace)).to_contain_text("Grace Hopper"))
    await page.do(lambda p: expect(p.locator(grace)).to_contain_text("admin"))
    await page.do(lambda p: expect(p.locator('#user-list tr[data-enrollid="5"]')).to_contain_text("card"))
    await page.screenshot("terminal-user-list")

    # An enrolment sent by an HTTP-mode terminal names its punches too.
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        http_sim = SimTerminal("USERS002")
        await ops.call(daemon.core, "terminal.add", {"sn": "USERS002"})
        await http_sim.post(client, {"cmd": "senduser", "sn": "USERS002", "enrollid": 8, "name": "Ada Lovelace",
                                     "backupnum": 11, "admin": 0, "record": "12345"})
        await http_sim.post(client, http_sim.sendlog_body(punches(1, enrollid=8)))
    await page.do(lambda p: p.goto(daemon.base_url + "/attendance?sn=USERS002"))
    await page.do(lambda p: expect(p.locator("#punches tbody tr").nth(0)).to_contain_text("Ada Lovelace"))

"""Devices exported and imported as CSV from the devices page, in Chromium: the export escapes
formulas and holds no secrets; the import shows a preview, then what was created (tokens once)
and what was refused with the reason."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from gatewayd import ops
from gatewayd.secrets_ import hash_token

from .browser import missing
from .helpers import logged_in, set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

KEY = "2b7e151628aed2a6abf7158809cf4f3c"


async def test_export_then_import_with_preview_and_result(daemon, page, new_page, tmp_path):
    await set_password(daemon)
    base = daemon.base_url
    kept = await ops.call(daemon.core, "device.create", {"name": "=1+2", "tags": ["floor1"]})
    await ops.call(daemon.core, "device.create", {"name": "Meter", "lorawan": {"dev_eui": "70b3d57ed0000001",
                                                                               "app_key": KEY, "class": "C"}})
    await ui_login(page, base)
    await page.do(lambda p: p.wait_for_url("**/devices"))

    def export(p):
        with p.expect_download() as info:
            p.get_by_role("link", name="Export CSV").click()
        return info.value.suggested_filename, Path(info.value.path()).read_text()
    filename, text = await page.do(export)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert filename.startswith("devices-") and filename.endswith(".csv")
    assert [r["name"] for r in rows] == ["'=1+2", "Meter"]  # a formula made plain text
    assert rows[1]["class"] == "C" and KEY not in text and "tok_" not in text

    # The export again (lines 2-3, both exist), then new rows; app_key is a column the export lacks.
    out = io.StringIO()
    writer = csv.DictWriter(out, [*rows[0], "app_key"], restval="")
    writer.writeheader()
    writer.writerows(rows)
    writer.writerows([{"name": "Boiler", "tags": "floor2,hot"},                                       # 4
                      {"name": "Pump", "dev_eui": "70b3d57ed0000002", "app_key": KEY},                # 5
                      {"name": "Other", "dev_eui": "70b3d57ed0000001", "app_key": KEY},               # 6
                      {"name": "", "kind": "ws"},                                                     # 7
                      {"name": "Valve", "tags": "t"}])                                                # 8
    upload = tmp_path / "new-devices.csv"
    upload.write_text(out.getvalue())

    def preview(p):
        p.get_by_role("link", name="Import CSV").click()
        p.get_by_label("CSV file").set_input_files(str(upload))
        p.get_by_role("button", name="Preview").click()
        p.wait_for_url("**/devices/import#preview")
        expect(p.locator("#ready-count")).to_have_text("3")
        expect(p.locator('#preview-rows tr[data-line="2"]')).to_contain_text("exists already")
        expect(p.locator('#preview-rows tr[data-line="3"]')).to_contain_text("exists already")
        expect(p.locator('#preview-rows tr[data-line="5"]')).to_contain_text("app_key given")
        expect(p.locator('#preview-rows tr[data-line="6"]')).to_contain_text("70b3d57ed0000001 already exists")
        expect(p.locator('#preview-rows tr[data-line="7"]')).to_contain_text("needs a name")
        return p.content()
    html = await page.do(preview)
    assert KEY not in html
    await page.screenshot("devices-import-preview")
    assert len(daemon.core.state.devices.devices) == 2  # nothing created by the preview

    def create(p):
        p.get_by_role("button", name="Create 3 devices").click()
        p.wait_for_url("**/devices/import/result")
        expect(p.get_by_role("heading", level=1)).to_contain_text("3 created, 4 refused")
        expect(p.locator('#refused tr[data-line="6"]')).to_contain_text("already exists")
        with p.expect_download() as info:
            p.get_by_role("button", name="Download as CSV").click()
        return Path(info.value.path()).read_text()
    downloaded = await page.do(create)
    await page.screenshot("devices-import-result")
    created = {r["name"]: r for r in csv.DictReader(io.StringIO(downloaded))}
    assert set(created) == {"Boiler", "Pump", "Valve"} and created["Pump"]["token"] == ""
    boiler = daemon.core.state.devices.get(created["Boiler"]["id"])
    assert boiler["tags"] == ["floor2", "hot"] and boiler["token_hash"] == hash_token(created["Boiler"]["token"])
    assert daemon.core.state.lorawan.devices["70b3d57ed0000002"]["device_id"] == created["Pump"]["id"]
    assert daemon.core.state.devices.get(kept["id"])["name"] == "=1+2"

    # Shown once: a reload shows no token; Back does not create anything again.
    await page.do(lambda p: p.reload())
    await page.do(lambda p: expect(p.get_by_text("has been shown already")).to_be_visible())
    assert created["Boiler"]["token"] not in await page.do(lambda p: p.content())
    await page.do(lambda p: p.go_back())
    assert len(daemon.core.state.devices.devices) == 5

    phone = await new_page(390, 844)
    await ui_login(phone, base)
    await phone.do(lambda p: p.wait_for_url("**/devices"))

    def refused_file(p):
        p.goto(base + "/devices/import")
        p.get_by_label("Or paste the CSV text").fill("kind,tags\nws,a\n")
        p.get_by_role("button", name="Preview").click()
        expect(p.locator("#text-error")).to_have_text("the header row has no 'name' column")
        expect(p.get_by_label("Or paste the CSV text")).to_have_value("kind,tags\nws,a\n")
    await phone.do(refused_file)
    await phone.screenshot("devices-import-phone")


async def test_import_size_is_limited(daemon):
    async with logged_in(daemon) as (http, csrf):
        big = b"name\n" + b"x" * (1024 * 1024)
        response = await http.post("/devices/import", data={"csrf_token": csrf},
                                   files={"file": ("big.csv", big, "text/csv")})
        assert response.status_code in (303, 413)
        if response.status_code == 303:
            assert "larger than" in (await http.get("/devices/import")).text
    assert daemon.core.state.devices.devices == {}

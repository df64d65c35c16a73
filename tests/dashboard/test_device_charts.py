"""The device page's telemetry charts (uPlot, vendored): served from our own static files, values
on hover with their unit, ranges from the history store, zoom, and breaks where the device was silent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gatewayd import ops
from tests.devices.helpers import open_websocket_url, receive_json, register, send_json, ws_url

from .a11y import CONTRAST_JS, TARGETS_JS
from .browser import missing
from .helpers import set_password
from .test_browser import ui_login

if missing() is not None:
    pytest.skip(f"browser tests skipped: {missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


async def test_vendored_library_is_served_with_its_licence(daemon):
    import httpx

    async with httpx.AsyncClient(base_url=daemon.base_url) as http:
        script = await http.get("/static/vendor/uplot.min.js")
        licence = await http.get("/static/vendor/uplot.LICENSE")
    # The committed copy is the version packaging/vendor.sh pins (make vendor refetches it).
    pinned = re.search(r"^UPLOT_VERSION=(\S+)$", (ROOT / "packaging" / "vendor.sh").read_text(), re.M).group(1)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.text.startswith(f"/*! https://github.com/leeoniya/uPlot (v{pinned}) */")
    assert licence.status_code == 200 and "MIT License" in licence.text


async def test_charts_show_units_on_hover_zoom_and_change_range(daemon, page, new_page):
    await set_password(daemon)
    base = daemon.base_url
    device = await ops.call(daemon.core, "device.create", {"name": "Boiler", "tags": ["unit:flow=L/min"]})
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device, device["token"])
        for i, (temp, flow) in enumerate(((20.5, 3), (21.0, 4), (22.25, 5))):
            await send_json(ws, {"type": "telemetry", "payload": {"temp_c": temp, "flow": flow, "rssi": -70},
                                 "id": i + 1})
            assert (await receive_json(ws))["type"] == "ack"

    outside, console = [], []
    await page.do(lambda p: p.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url)))
    await page.do(lambda p: p.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None))
    await ui_login(page, base)
    await page.do(lambda p: p.wait_for_url("**/devices"))
    await page.do(lambda p: p.goto(f"{base}/devices/{device['id']}"))
    chart = "#chart-temp_c"
    await page.do(lambda p: expect(p.locator(f"{chart} .u-legend")).to_contain_text("temp_c (°C)"))
    await page.do(lambda p: expect(p.locator("#chart-flow .u-legend")).to_contain_text("flow (L/min)"))
    await page.do(lambda p: expect(p.locator("#chart-rssi .u-legend")).to_contain_text("rssi (dBm)"))
    await page.do(lambda p: expect(p.locator(chart)).to_contain_text("min 20.5 °C · max 22.25 °C"))

    # Hover: the legend shows the value under the cursor with its unit (the bucket's mean).
    def hover(p):
        over = p.locator(f"{chart} .u-over")
        over.hover(position={"x": over.bounding_box()["width"] - 3, "y": 10})
        expect(p.locator(f"{chart} .u-legend .u-series").nth(1).locator(".u-value")).to_have_text("21.25 °C")
        return p.evaluate("() => TelemetryCharts.plot('temp_c').data[0]")
    xs = await page.do(hover)
    assert len(xs) == 1  # three messages within one bucket of the 24 h range
    await page.screenshot("device-chart")
    assert await page.do(lambda p: p.evaluate(CONTRAST_JS, 4.5)) == []  # the charts' legends too

    # Ranges: the last hour asks for narrower buckets; a custom range with From after To is refused.
    def choose_hour(p):
        with p.expect_response(lambda r: "/telemetry?" in r.url and "key=temp_c" in r.url) as info:
            p.get_by_label("Range").select_option("3600")
        return info.value.json()
    series = await page.do(choose_hour)
    assert series["every_seconds"] <= 6 and series["points"][-1]["max"] == 22.25

    def bad_custom(p):
        p.get_by_label("Range").select_option("custom")
        p.get_by_label("From", exact=True).fill("2026-06-12T10:00")
        p.get_by_label("To", exact=True).fill("2026-06-12T09:00")
        p.get_by_role("button", name="Show").click()
        expect(p.locator("#custom-range [data-role=error]")).to_have_text("From must be before To.")
    await page.do(bad_custom)

    # Zoom: a drag across a chart loads that stretch and offers to go back.
    await page.do(lambda p: p.get_by_label("Range").select_option("3600"))

    def drag(p):
        p.locator(f"{chart} .u-over").scroll_into_view_if_needed()
        box = p.locator(f"{chart} .u-over").bounding_box()
        with p.expect_response(lambda r: "/telemetry?" in r.url and "key=temp_c" in r.url) as info:
            p.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 20)
            p.mouse.down()
            p.mouse.move(box["x"] + box["width"] - 1, box["y"] + 20, steps=4)
            p.mouse.up()
        expect(p.get_by_role("button", name="Reset zoom")).to_be_visible()
        return info.value.json()
    zoomed = await page.do(drag)
    assert zoomed["every_seconds"] <= 3
    await page.do(lambda p: p.get_by_role("button", name="Reset zoom").click())
    await page.do(lambda p: expect(p.get_by_role("button", name="Reset zoom")).to_be_hidden())

    phone = await new_page(390, 844)
    await ui_login(phone, base)
    await phone.do(lambda p: p.wait_for_url("**/devices"))
    await phone.do(lambda p: p.goto(f"{base}/devices/{device['id']}"))
    await phone.do(lambda p: expect(p.locator(f"{chart} canvas")).to_be_visible())
    width = await phone.do(lambda p: p.locator(f"{chart} .uplot").bounding_box()["width"])
    assert width <= 390
    await phone.screenshot("device-chart-phone")
    assert await phone.do(lambda p: p.evaluate(TARGETS_JS, 24)) == []
    assert outside == []  # everything from this server: no CDN
    assert console == []  # nothing refused by the Content-Security-Policy, no script error


async def test_silences_break_the_line(daemon, page):
    """A null point where the device sent nothing for much longer than its usual spacing."""
    await set_password(daemon)
    device = await ops.call(daemon.core, "device.create", {"name": "Meter"})
    await ui_login(page, daemon.base_url)
    await page.do(lambda p: p.wait_for_url("**/devices"))
    await page.do(lambda p: p.goto(f"{daemon.base_url}/devices/{device['id']}"))
    every_minute = [{"t": t * 60, "v": t} for t in (0, 1, 2, 3, 40, 41, 42)]
    xs, ys = await page.do(lambda p: p.evaluate("(pts) => TelemetryCharts.withGaps(pts, 60)", every_minute))
    assert ys == [0, 1, 2, 3, None, 40, 41, 42] and xs[4] == 3 * 60 + 60
    steady = [{"t": t * 60, "v": 1} for t in range(10)]
    assert None not in (await page.do(lambda p: p.evaluate("(pts) => TelemetryCharts.withGaps(pts, 5)", steady)))[1]
    # A known disconnection breaks the line where it began, even within the usual spacing.
    xs, ys = await page.do(lambda p: p.evaluate("(pts) => TelemetryCharts.withGaps(pts, 5, [[90, 100]])", steady))
    assert ys[:3] == [1, 1, None] and xs[2] == 90 and ys.count(None) == 1
    # Hourly buckets of a device that sends every minute: one empty hour is a break.
    hourly = [{"t": h * 3600, "v": 1, "n": 60} for h in (0, 1, 2, 4, 5)]
    assert (await page.do(lambda p: p.evaluate("(pts) => TelemetryCharts.withGaps(pts, 3600)", hourly)))[1] \
        == [1, 1, 1, None, 1, 1]
    units = await page.do(lambda p: p.evaluate(
        "() => ['battery_mv', 'humidity', 'co2_ppm', 'tempC', 'count', 'x_c'].map((k) => TelemetryCharts.unitOf(k, []))"))
    assert units == ["mV", "%", "ppm", "°C", "", "°C"]

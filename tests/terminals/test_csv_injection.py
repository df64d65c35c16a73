"""Attendance CSV: a cell a spreadsheet would run as a formula is made plain text (OWASP)."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from gatewayd.textsafe import csv_cell

from .helpers import add_terminal
from .termsim import SimTerminal, punches


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_each_formula_start_is_neutralised(start):
    assert csv_cell(start + "cmd|' /C calc'!A0") == "'" + start + "cmd|' /C calc'!A0"


def test_plain_text_and_numbers_are_left_alone():
    assert csv_cell("Front door") == "Front door"
    assert csv_cell(-5) == -5 and csv_cell(36.6) == 36.6 and csv_cell(None) is None


@pytest.fixture
def daemon_sections():
    return {"terminals": {"codes": {"default": {"mode": {"1": "\tface", "2": "\rcard"}}}}}


async def test_the_export_neutralises_serial_numbers_and_code_names(daemon):
    sns = ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)"]
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as c:
        for sn in sns:
            await add_terminal(daemon, sn)
            sim = SimTerminal(sn)
            assert (await sim.post(c, sim.sendlog_body(punches(2)))).json()["result"] is True
        response = await c.get("/api/attendance", params={"format": "csv"}, headers=daemon.auth)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted({r["sn"] for r in rows}) == sorted("'" + sn for sn in sns)
    assert {r["mode_name"] for r in rows} <= {"'\tface", "'\rcard"}
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r.values())

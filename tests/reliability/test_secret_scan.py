"""No generated token, API key, password or LoRaWAN key reaches a log, the journal, a monitoring
stream or an error body: the scanner plugin over an end-to-end scenario, and over the other suites
with GATEWAYD_SECRET_SCAN_SUITES=1 (slower: every end-to-end suite runs again)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.reliability.figures import count

SCENARIO = "tests/reliability/scenario_secrets.py"


def run_scanned(*paths: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.reliability.secret_scan",
                           "-p", "no:cacheprovider", *paths], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_the_scenario_leaks_no_secret():
    done = run_scanned(SCENARIO)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "secrets learnt:" in done.stdout
    count("secret-scan scenario runs", 1)


def test_the_scanner_catches_a_planted_leak():
    done = run_scanned(SCENARIO, env={"GATEWAYD_PLANT_LEAK": "1"})
    assert done.returncode != 0
    assert "secret leak" in done.stdout and "planted: token" in done.stdout, done.stdout[-3000:]


@pytest.mark.skipif(not os.environ.get("GATEWAYD_SECRET_SCAN_SUITES"),
                    reason="set GATEWAYD_SECRET_SCAN_SUITES=1 to rerun every end-to-end suite under the scanner")
def test_the_end_to_end_suites_leak_no_secret():
    done = run_scanned("tests/devices", "tests/terminals", "tests/monitor", "tests/lorawan", "tests/daemon",
                       timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:]

"""Fuzzing profiles: GATEWAYD_FUZZ_PROFILE=ci (default, seconds) or long (minutes; for a closing note)."""

from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, settings

settings.register_profile("fuzz-ci", max_examples=250, deadline=None, derandomize=False,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz-long", max_examples=25_000, deadline=None,
                          suppress_health_check=list(HealthCheck))
PROFILE = "fuzz-" + os.environ.get("GATEWAYD_FUZZ_PROFILE", "ci")


def pytest_terminal_summary(terminalreporter):
    from tests.fuzz.targets import TARGETS

    tried = {name: t.calls for name, t in TARGETS.items() if t.calls}
    openapi = sys.modules.get("tests.fuzz.test_openapi")
    if openapi is not None and openapi.CALLS["count"]:
        tried["REST API (schemathesis requests)"] = openapi.CALLS["count"]
    if tried:
        terminalreporter.section(f"fuzz inputs tried ({PROFILE})")
        for name, calls in sorted(tried.items()):
            terminalreporter.write_line(f"{name}: {calls}")

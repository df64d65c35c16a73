"""Hypothesis over every network-facing parser: raw bytes, almost-valid documents and mutations of
valid ones. Any exception but the codec's ProtocolError, or a broken round trip, fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tests.fuzz.conftest import PROFILE
from tests.fuzz.strategies import STRUCTURED, mutated
from tests.fuzz.targets import TARGETS

REGRESSIONS = Path(__file__).parent / "regressions"
NAMES = sorted(TARGETS)


@pytest.mark.parametrize("name", NAMES)
def test_raw_bytes(name):
    target = TARGETS[name]

    @settings(settings.get_profile(PROFILE))
    @given(st.binary(max_size=2048) | st.sampled_from(target.seeds))
    def run(data):
        target(data)

    run()


@pytest.mark.parametrize("name", NAMES)
def test_structured_and_mutated(name):
    target = TARGETS[name]

    @settings(settings.get_profile(PROFILE))
    @given(STRUCTURED[name] | mutated(STRUCTURED[name]) | mutated(st.sampled_from(target.seeds)))
    def run(data):
        target(data)

    run()


def test_regression_inputs():
    """Inputs that once broke a parser (found by atheris or hypothesis) are replayed forever."""
    replayed = 0
    for path in sorted(REGRESSIONS.glob("*/*")):
        if path.is_file() and path.parent.name in TARGETS:
            TARGETS[path.parent.name](path.read_bytes())
            replayed += 1
    assert replayed >= 0


def test_seeds_are_accepted_by_their_parsers():
    """The fuzzers start from valid inputs: each seed parses (so mutations explore deep paths)."""
    for name, target in TARGETS.items():
        for seed in target.seeds:
            target(seed)

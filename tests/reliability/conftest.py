"""Fixtures of the reliability suite, and the figures it reports at the end of a run."""

from __future__ import annotations

import pytest

from gatewayd.journal.files import list_snapshots
from tests.reliability.journal_damage import PristineStates, build_journal


@pytest.fixture(scope="session")
def pristine(tmp_path_factory):
    """Two undamaged journals built by the daemon's code: "full" keeps every segment, "pruned" lost
    the segments its newest snapshot covers to retention."""
    base = tmp_path_factory.mktemp("pristine")
    journals = {"full": build_journal(base / "full"), "pruned": build_journal(base / "pruned", pruned=True)}
    assert len(list_snapshots(journals["pruned"])) == 2
    return {name: (journal, PristineStates(journal)) for name, journal in journals.items()}


def pytest_terminal_summary(terminalreporter):
    from tests.reliability.figures import FIGURES

    if FIGURES:
        terminalreporter.section("reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")

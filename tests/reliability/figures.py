"""Figures the reliability and fuzz suites report at the end of a run (`pytest -s` not needed)."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter = Counter()


def count(name: str, amount: int = 1) -> None:
    FIGURES[name] += amount

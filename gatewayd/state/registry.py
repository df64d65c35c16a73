"""Every part of the model, in the order their appliers run."""

from __future__ import annotations


def part_classes() -> list[type]:
    from .access import AccessState

    return [AccessState]

"""Every service of the daemon: (name, factory(core)). Created for the daemon and offline commands
alike; the daemon also starts `run(task_status=...)` in its root nursery for those that have one."""

from __future__ import annotations


def service_factories() -> list[tuple[str, object]]:
    from .journal_ops import Compactor

    return [
        ("compactor", Compactor),
    ]

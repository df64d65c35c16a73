"""Shared helpers for the terminal tests."""

from __future__ import annotations

from gatewayd import ops


async def add_terminal(daemon, sn: str, **settings) -> dict:
    return await ops.call(daemon.core, "terminal.add", {"sn": sn, **settings})


def stored(core, sn: str | None = None) -> list:
    """Punches in the store (held ones left out)."""
    return list(core.service("attendance").select(sn=sn))


def stored_keys(core, sn: str | None = None) -> list[tuple]:
    return [(p.source, p.enrollid, p.time, p.inout, p.event) for p in stored(core, sn)]


def records_of(core, record_type: str) -> list[dict]:
    """Every record of a type in the journal files (durable ones)."""
    from gatewayd.journal.reader import JournalReader

    return [r.data for r in JournalReader(core.journal_dir).records() if r.type == record_type]

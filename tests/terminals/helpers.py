"""Shared helpers for the terminal tests."""

from __future__ import annotations

from gatewayd import ops


async def add_terminal(daemon, sn: str, **settings) -> dict:
    return await ops.call(daemon.core, "terminal.add", {"sn": sn, **settings})


async def stored(core, sn: str | None = None) -> list:
    """Punches in the history store (held ones left out), every durable one included."""
    await core.history.wait_applied()
    return stored_now(core, sn)


def stored_now(core, sn: str | None = None) -> list:
    """What the history store holds right now (for conditions polled with wait_for)."""
    return list(core.service("attendance").select(sn=sn))


async def stored_keys(core, sn: str | None = None) -> list[tuple]:
    return [(p.source, p.enrollid, p.time, p.inout, p.event) for p in await stored(core, sn)]


def records_of(core, record_type: str) -> list[dict]:
    """Every record of a type in the journal files (durable ones)."""
    from gatewayd.journal.reader import JournalReader

    return [r.data for r in JournalReader(core.journal_dir).records() if r.type == record_type]

"""Shared helpers for the terminal tests."""

from __future__ import annotations

import trio

from gatewayd import ops


async def add_terminal(daemon, sn: str, **settings) -> dict:
    return await ops.call(daemon.core, "terminal.add", {"sn": sn, **settings})


async def stored(core, sn: str | None = None) -> list:
    """Punches in the history store (held ones left out), every durable one included."""
    await core.history.wait_applied()
    return stored_now(core, sn)


def stored_now(core, sn: str | None = None) -> list:
    """What the history store holds right now."""
    return list(core.service("attendance").select(sn=sn))


async def wait_stored(core, sn: str, count: int, timeout: float = 10) -> list:
    """Until the store holds `count` punches of `sn`: each time a record becomes durable the store is
    asked to apply every durable record (an early commit, as a query does) and the punches counted."""
    with trio.fail_after(timeout):
        while True:
            durable = core.hub.fanned_seq
            await core.history.wait_applied(durable)
            punches = stored_now(core, sn)
            if len(punches) == count:
                return punches
            await core.hub.wait_fanned_past(durable)


async def stored_keys(core, sn: str | None = None) -> list[tuple]:
    return [(p.source, p.enrollid, p.time, p.inout, p.event) for p in await stored(core, sn)]


def records_of(core, record_type: str) -> list[dict]:
    """Every record of a type in the journal files (durable ones)."""
    from gatewayd.journal.reader import JournalReader

    return [r.data for r in JournalReader(core.journal_dir).records() if r.type == record_type]

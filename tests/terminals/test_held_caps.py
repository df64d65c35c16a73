"""Unknown terminals cannot bloat memory or the journal: their punches are kept on disk only,
within caps, and new unknown serial numbers are limited per address."""

from __future__ import annotations

import pytest

from gatewayd.connectors.terminals.held import HeldPunches
from gatewayd.connectors.terminals import punches as tpunch

from tests.conftest import wait_for

from .helpers import records_of, stored
from .termsim import SimTerminal, punches

sections = pytest.mark.parametrize


async def test_punches_of_a_pending_terminal_stay_out_of_memory_and_out_of_the_journal(daemon, client):
    sim = SimTerminal("FLOOD1")
    for _ in range(3):  # resent after each refusal, as real terminals do
        reply = (await sim.post(client, sim.sendlog_body(punches(50)))).json()
        assert reply["result"] is False and "50 records are kept" in reply["reason"]
    assert await stored(daemon.core) == []
    assert records_of(daemon.core, "attendance.punches") == []
    assert daemon.core.service("terminals").held_count("FLOOD1") == 50
    assert len(list((daemon.state_dir / "held").iterdir())) == 1


@sections("daemon_sections", [{"terminals": {"max_held_per_terminal": 5}}])
async def test_a_batch_beyond_the_per_terminal_cap_is_refused_and_the_terminal_keeps_it(daemon, client):
    sim = SimTerminal("CAP1")
    assert "4 records are kept" in (await sim.post(client, sim.sendlog_body(punches(4)))).json()["reason"]
    reply = (await sim.post(client, sim.sendlog_body(punches(3, enrollid=50)))).json()
    assert reply["result"] is False and "no more can be" in reply["reason"]
    assert daemon.core.service("terminals").held_count("CAP1") == 4
    assert (await client.post("/api/terminals/CAP1/approve", headers=daemon.auth)).status_code == 200
    assert len(await stored(daemon.core, "CAP1")) == 4
    assert (await sim.post(client, sim.sendlog_body(punches(3, enrollid=50)))).json()["result"] is True
    assert len(await stored(daemon.core, "CAP1")) == 7


@sections("daemon_sections", [{"terminals": {"max_held_bytes": 2000}}])
async def test_all_held_punches_together_stay_within_max_held_bytes(daemon, client):
    kept = []
    for i in range(10):
        sim = SimTerminal(f"BYTES{i}")
        reply = (await sim.post(client, sim.sendlog_body(punches(5)))).json()
        kept.append("no more can be" not in reply["reason"])
    assert kept[0] and not all(kept)
    held = daemon.state_dir / "held"
    assert sum(p.stat().st_size for p in held.iterdir()) <= 2000


@sections("daemon_sections", [{"terminals": {"unknown_per_minute_per_source": 3}}])
async def test_new_unknown_serial_numbers_are_limited_per_address(daemon, client):
    replies = [(await SimTerminal(f"RATE{i}").post(client, {"cmd": "checklive", "sn": f"RATE{i}"})).json()
               for i in range(6)]
    assert [r["result"] for r in replies] == [False] * 6
    assert ["waiting for an operator" in r["reason"] for r in replies] == [True] * 3 + [False] * 3
    assert "try later" in replies[-1]["reason"]
    assert len(records_of(daemon.core, "terminal.pending")) == 3


@sections("daemon_sections", [{"terminals": {"max_pending": 2}}])
async def test_the_number_of_pending_terminals_is_capped(daemon, client):
    for i in range(4):
        await SimTerminal(f"MAXP{i}").post(client, {"cmd": "checklive", "sn": f"MAXP{i}"})
    pending = [t for t in daemon.core.state.terminals.terminals.values() if t["status"] == "pending"]
    assert len(pending) == 2


async def test_a_pending_terminal_registering_again_and_again_is_journaled_once(daemon, client):
    sim = SimTerminal("REG1")
    for _ in range(5):
        assert (await sim.post(client, sim.reg_body())).json()["result"] is False
    core = daemon.core
    await wait_for(lambda: core.writer.durable_seq == core.hub.next_seq - 1)  # non-durable ones written too
    assert len(records_of(daemon.core, "terminal.registered")) == 1


async def test_held_punches_of_an_approval_cut_short_are_stored_at_the_next_start(daemon, client):
    sim = SimTerminal("CRASH1")
    await sim.post(client, sim.reg_body())
    assert (await client.post("/api/terminals/CRASH1/approve", headers=daemon.auth)).status_code == 200
    await daemon.stop()
    # what a crash between the approval record and the release leaves behind
    held = HeldPunches(daemon.state_dir / "held", lambda: (100, 1 << 20))
    await held.keep("CRASH1", [tpunch.parse_punch(p) for p in punches(3)])
    await daemon.start()
    assert len(await stored(daemon.core, "CRASH1")) == 3
    assert list((daemon.state_dir / "held").iterdir()) == []

"""Unknown, pending, approved and rejected terminals: nothing a waiting terminal sends is lost."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from gatewayd.gateway import comm_tables

from ..conftest import run_cli, wait_for
from .helpers import add_terminal, records_of, stored
from .termsim import SimTerminal, punches

comms = comm_tables()


@pytest.fixture
async def client(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as c:
        yield c


async def test_unknown_terminal_is_held_then_approved(daemon, client):
    sim = SimTerminal("NEW1")
    reply = (await sim.post(client, sim.reg_body())).json()
    assert reply["result"] is False and "waiting for an operator's approval" in reply["reason"]
    batch = sim.sendlog_body(punches(6))
    for _ in range(2):  # refused, so the terminal sends it again: kept aside once
        reply = (await sim.post(client, batch)).json()
        assert reply["result"] is False and "6 records are kept" in reply["reason"]
    assert (await sim.post(client, {"cmd": "checklive", "sn": "NEW1"})).json()["result"] is False

    pending = (await client.get("/api/terminals", params={"status": "pending"}, headers=daemon.auth)).json()
    assert [(t["sn"], t["held_records"]) for t in pending] == [("NEW1", 6)]
    assert await stored(daemon.core, "NEW1") == []
    listed = (await client.get("/api/attendance", params={"sn": "NEW1"}, headers=daemon.auth)).json()
    assert listed["punches"] == []

    response = await client.post("/api/terminals/NEW1/approve", headers=daemon.auth)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert len(await stored(daemon.core, "NEW1")) == 6
    assert (await sim.post(client, batch)).json()["result"] is True  # the resend now succeeds ...
    assert len(await stored(daemon.core, "NEW1")) == 6                     # ... and stores nothing twice
    approved = records_of(daemon.core, "terminal.approved")
    assert approved[-1]["held"] == 6 and approved[-1]["actor"] == "apikey:tests"
    action = comms.action(next(r for r in _journal(daemon) if r.type == "terminal.approved"))
    assert action.action_type == "terminal_approved" and action.target == "terminal:NEW1"
    assert action.details["held"] == 6


async def test_rejected_terminal_loses_held_records_and_stays_refused(daemon, client):
    sim = SimTerminal("NEW2")
    await sim.post(client, sim.sendlog_body(punches(4)))
    assert daemon.core.service("terminals").held_count("NEW2") == 4
    response = await client.post("/api/terminals/NEW2/reject", headers=daemon.auth)
    assert response.json()["status"] == "rejected"
    assert daemon.core.service("terminals").held_count("NEW2") == 0
    assert records_of(daemon.core, "terminal.rejected")[-1]["dropped"] == 4
    reply = (await sim.post(client, sim.sendlog_body(punches(2)))).json()
    assert reply["result"] is False and "rejected" in reply["reason"]
    assert daemon.core.service("terminals").held_count("NEW2") == 0 and await stored(daemon.core, "NEW2") == []
    # an operator can still change their mind
    await add_terminal(daemon, "NEW2", name="after all")
    assert (await sim.post(client, sim.sendlog_body(punches(2)))).json()["result"] is True
    assert len(await stored(daemon.core, "NEW2")) == 2


async def test_held_records_survive_a_restart(daemon, client):
    sim = SimTerminal("NEW3")
    await sim.post(client, sim.sendlog_body(punches(5)))
    await daemon.restart()
    assert daemon.core.state.terminals.get("NEW3")["status"] == "pending"
    assert daemon.core.service("terminals").held_count("NEW3") == 5
    async with httpx.AsyncClient(base_url=daemon.base_url) as fresh:
        assert (await fresh.post("/api/terminals/NEW3/approve", headers=daemon.auth)).status_code == 200
    assert len(await stored(daemon.core, "NEW3")) == 5


async def test_auto_accept(daemon, client):
    daemon.core.settings.terminals.auto_accept = True
    sim = SimTerminal("AUTO1")
    assert (await sim.post(client, sim.sendlog_body(punches(3)))).json()["result"] is True
    assert daemon.core.state.terminals.get("AUTO1")["decided_by"] == "auto_accept"
    assert len(await stored(daemon.core, "AUTO1")) == 3


async def test_rest_registry_validation(daemon, client):
    auth = daemon.auth
    assert (await client.get("/api/terminals")).status_code == 401
    assert (await client.post("/api/terminals", json={"sn": "R1"})).status_code == 401
    created = await client.post("/api/terminals", json={"sn": "R1", "name": "hall", "tz": "Europe/Rome"}, headers=auth)
    assert created.status_code == 201 and created.json()["effective_tz"] == "Europe/Rome"
    assert (await client.post("/api/terminals", json={"sn": "R1"}, headers=auth)).status_code == 409
    bad_tz = await client.post("/api/terminals", json={"sn": "R2", "tz": "Mars/Olympus"}, headers=auth)
    assert bad_tz.status_code == 422 and "unknown time zone" in bad_tz.json()["message"]
    assert (await client.post("/api/terminals", json={"name": "x"}, headers=auth)).status_code == 422
    assert (await client.post("/api/terminals", json={"sn": "R3", "token": "x"}, headers=auth)).status_code == 422
    assert (await client.post("/api/terminals", content=b"[", headers=auth)).status_code == 400
    assert (await client.post("/api/terminals", json={"sn": "\u00e9t\u00e9"}, headers=auth)).status_code == 422
    patched = await client.patch("/api/terminals/R1", json={"cloudtime": "local", "tz": ""}, headers=auth)
    assert patched.json()["cloudtime"] == "local" and patched.json()["tz"] is None
    assert (await client.get("/api/terminals/NOPE", headers=auth)).status_code == 404
    assert (await client.post("/api/terminals/R1/approve", headers=auth)).status_code == 409
    deleted = await client.delete("/api/terminals/R1", headers=auth)
    assert deleted.json()["deleted"] is True
    assert (await client.get("/api/terminals/R1", headers=auth)).status_code == 404


async def test_cli_with_the_daemon_running(daemon, client):
    state_dir = str(daemon.state_dir)
    result = await trio.to_thread.run_sync(lambda: run_cli(
        "terminal", "add", "CLI1", "--name", "gate", "--tz", "America/New_York", "--state-dir", state_dir))
    assert result.returncode == 0, result.stderr
    assert daemon.core.state.terminals.get("CLI1")["tz"] == "America/New_York"
    sim = SimTerminal("CLI2")
    await sim.post(client, sim.sendlog_body(punches(2)))
    listed = await trio.to_thread.run_sync(lambda: run_cli(
        "terminal", "list", "--status", "pending", "--json", "--state-dir", state_dir))
    assert [t["sn"] for t in json.loads(listed.stdout)] == ["CLI2"]
    approved = await trio.to_thread.run_sync(lambda: run_cli("terminal", "approve", "CLI2", "--state-dir", state_dir))
    assert approved.returncode == 0 and "CLI2 accepted" in approved.stdout
    assert len(await stored(daemon.core, "CLI2")) == 2
    again = await trio.to_thread.run_sync(lambda: run_cli("terminal", "approve", "CLI2", "--state-dir", state_dir))
    assert again.returncode == 1 and "already accepted" in again.stderr


def _journal(daemon):
    from gatewayd.journal.reader import JournalReader

    return list(JournalReader(daemon.core.journal_dir).records())


def test_cli_without_the_daemon(tmp_path):
    state = str(tmp_path / "state")
    added = run_cli("terminal", "add", "OFFCLI", "--tz", "Europe/Rome", "--json", "--state-dir", state)
    assert added.returncode == 0 and json.loads(added.stdout)["tz"] == "Europe/Rome"
    unknown = run_cli("terminal", "approve", "NOPE", "--state-dir", state)
    assert unknown.returncode == 1 and "not_found" in unknown.stderr and "Traceback" not in unknown.stderr
    bad_zone = run_cli("terminal", "update", "OFFCLI", "--tz", "Mars/Base", "--state-dir", state)
    assert bad_zone.returncode == 1 and "unknown time zone" in bad_zone.stderr


async def test_approval_shows_a_terminal_online_when_it_has_just_called_in(daemon, client):
    terminals = daemon.core.service("terminals")
    sim = SimTerminal("NEWON")
    await sim.post(client, sim.reg_body())
    await sim.post(client, sim.sendlog_body(punches(3)))
    assert (await wait_for(lambda: records_of(daemon.core, "terminal.held")))[-1] == {"sn": "NEWON", "held": 3}
    before = daemon.core.hub.next_seq
    await sim.post(client, sim.sendlog_body(punches(3)))  # the same batch again: nothing new to count
    assert daemon.core.hub.next_seq == before
    approved = (await client.post("/api/terminals/NEWON/approve", headers=daemon.auth)).json()
    assert approved["online"] is True and approved["connector"] == "http"
    assert "NEWON" in terminals.last_heard  # the sweeper takes it offline when its calls stop

    late = SimTerminal("NEWLATE")
    await late.post(client, late.reg_body())
    heard, connector, remote = terminals.heard_waiting["NEWLATE"]
    timeout = daemon.core.settings.presence.http_timeout
    terminals.heard_waiting["NEWLATE"] = (heard - timeout - 1, connector, remote)  # called in long ago
    approved = (await client.post("/api/terminals/NEWLATE/approve", headers=daemon.auth)).json()
    assert approved["online"] is False

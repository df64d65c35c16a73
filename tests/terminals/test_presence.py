"""Presence of HTTP terminals: online while requests arrive, offline on time with nothing else happening."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from gatewayd import ops
from gatewayd.connectors.terminals.codec import CheckLive
from gatewayd.gateway import open_core
from gatewayd.gateway import comm_tables

from ..conftest import make_settings, wait_for
from .helpers import add_terminal, records_of
from .termsim import SimTerminal

comms = comm_tables()


@pytest.fixture
def daemon_sections():
    return {"presence": {"http_timeout": 1.0, "sweep_interval": 0.05}}


async def test_offline_after_the_timeout_with_a_real_daemon(daemon):
    await add_terminal(daemon, "PRS1")
    terminals = daemon.core.state.terminals
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        assert (await SimTerminal("PRS1").post(client, {"cmd": "checklive", "sn": "PRS1"})).json()["result"]
    assert terminals.get("PRS1")["online"] is True
    await wait_for(lambda: not terminals.get("PRS1")["online"], timeout=5)
    await daemon.core.hub.publish("test.flush", {})  # make the offline record durable
    offline = records_of(daemon.core, "terminal.offline")
    assert offline[-1]["sn"] == "PRS1" and offline[-1]["connector"] == "http"
    assert "no request for 1 s" in offline[-1]["reason"]
    online = [r for r in _journal(daemon) if r.type in ("terminal.online", "terminal.offline")]
    assert [comms.action(r).action_type for r in online] == ["terminal_online", "terminal_offline"]


async def test_offline_on_time_under_a_mock_clock(mock_clock, tmp_path):
    settings = make_settings(tmp_path / "state")
    timeout = settings.presence.http_timeout
    async with open_core(settings, online=True) as core:
        await ops.call(core, "terminal.add", {"sn": "MC1"})
        service = core.service("terminals")
        terminal = core.state.terminals.get("MC1")
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            await service.handle(CheckLive("MC1", None), connector="http", remote="test")
            assert terminal["online"] is True
            mock_clock.jump(timeout - 1)
            await trio.testing.wait_all_tasks_blocked()
            assert terminal["online"] is True
            await service.handle(CheckLive("MC1", None), connector="http", remote="test")  # heard again
            mock_clock.jump(timeout - 1)
            await trio.testing.wait_all_tasks_blocked()
            assert terminal["online"] is True
            mock_clock.jump(2)  # nothing happens but time passing
            await trio.testing.wait_all_tasks_blocked()
            assert terminal["online"] is False
            nursery.cancel_scope.cancel()


async def test_restart_gives_http_terminals_a_grace_period(daemon):
    await add_terminal(daemon, "PRS2")
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        await SimTerminal("PRS2").post(client, {"cmd": "checklive", "sn": "PRS2"})
    await daemon.core.hub.publish("test.flush", {})
    await daemon.restart()
    terminals = daemon.core.state.terminals
    assert terminals.get("PRS2")["online"] is True
    await wait_for(lambda: not terminals.get("PRS2")["online"], timeout=5)


def _journal(daemon):
    from gatewayd.journal.reader import JournalReader

    return list(JournalReader(daemon.core.journal_dir).records())

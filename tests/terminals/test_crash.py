"""kill -9 of the daemon between the durable write and the reply loses and doubles nothing."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trio

from ..conftest import DaemonProcess, run_cli
from .termsim import SimTerminal, punches

CRASH_HOOK = Path(__file__).parent / "crashhook"


def _stored(state: Path, sn: str | None = None) -> list[tuple]:
    out = run_cli("attendance", "export", "--format", "json", "--json", "--state-dir", str(state),
                  *(("--sn", sn) if sn else ()))
    assert out.returncode == 0, out.stderr
    return [(p["sn"], p["enrollid"], p["terminal_time"], p["inout"], p["event"]) for p in json.loads(out.stdout)]


def test_kill_between_durable_write_and_reply(tmp_path):
    state = tmp_path / "state"
    assert run_cli("terminal", "add", "KILL1", "--state-dir", str(state)).returncode == 0
    sim = SimTerminal("KILL1")
    first = sim.sendlog_body(punches(10))
    second = sim.sendlog_body(punches(10, start=datetime(2026, 6, 13, 9, 0)))
    daemon = DaemonProcess(state, env={"PYTHONPATH": str(CRASH_HOOK), "GATEWAYD_TEST_CRASH_AFTER_INGEST": "2"})
    daemon.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{daemon.port}", timeout=10) as client:
            assert client.post("/api/device-http", json=first).json()["result"] is True
            try:
                client.post("/api/device-http", json=second)
                raise AssertionError("the daemon answered although it should have died first")
            except httpx.TransportError:
                pass  # no reply: the terminal will send the batch again
        assert daemon.wait(10) == -9
    finally:
        daemon.stop()
    assert len(_stored(state, "KILL1")) == 20  # the unanswered batch was durable already

    daemon = DaemonProcess(state).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{daemon.port}", timeout=10) as client:
            for batch in (second, first):
                reply = client.post("/api/device-http", json=batch).json()
                assert reply["result"] is True and reply["logindex"] == batch["logindex"]
    finally:
        daemon.stop()
    keys = _stored(state, "KILL1")
    assert len(keys) == 20 == len(set(keys))


@pytest.mark.slow
async def test_kill_during_a_storm_of_sendlogs(tmp_path):
    """Many terminals post while the daemon is killed at a random moment; each resends what was not
    acknowledged (as firmware does) to a restarted daemon. Every punch ends up stored exactly once."""
    state = tmp_path / "state"
    config = tmp_path / "gatewayd.toml"
    config.write_text("[terminals]\nauto_accept = true\n")
    sns = [f"STORM{i}" for i in range(8)]
    batches = {sn: [SimTerminal(sn).sendlog_body(punches(10, start=datetime(2026, 6, 1) + timedelta(hours=h)))
                    for h in range(40)] for sn in sns}
    unacked = {sn: list(b) for sn, b in batches.items()}
    acked = 0
    enough = trio.Event()
    kill_after = random.randint(40, 120)  # acknowledged requests before the plug is pulled
    daemon = await trio.to_thread.run_sync(lambda: DaemonProcess(state, ["--config", str(config)]).start())
    try:
        async def terminal(client, sn):
            nonlocal acked
            for batch in batches[sn]:
                try:
                    reply = (await client.post("/api/device-http", json=batch)).json()
                except httpx.TransportError:
                    return
                if reply["result"] is True:
                    unacked[sn].remove(batch)
                    acked += 1
                    if acked >= kill_after:
                        enough.set()

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.port}", timeout=10) as client:
            async with trio.open_nursery() as nursery:
                for sn in sns:
                    nursery.start_soon(terminal, client, sn)
                with trio.fail_after(20):
                    await enough.wait()
                await trio.to_thread.run_sync(daemon.kill)
    finally:
        await trio.to_thread.run_sync(daemon.stop)
    assert 0 < sum(map(len, unacked.values())) < sum(map(len, batches.values()))

    daemon = await trio.to_thread.run_sync(lambda: DaemonProcess(state, ["--config", str(config)]).start())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.port}", timeout=10) as client:
            for sn in sns:
                for batch in unacked[sn] + batches[sn][:2]:  # and two acknowledged ones again, for good measure
                    assert (await client.post("/api/device-http", json=batch)).json()["result"] is True
    finally:
        await trio.to_thread.run_sync(daemon.stop)
    keys = await trio.to_thread.run_sync(_stored, state)
    expected = {(sn, r["enrollid"], r["time"], r["inout"], r["event"])
                for sn in sns for b in batches[sn] for r in b["record"]}
    assert len(keys) == len(set(keys)) and set(keys) == expected

"""The history store inside a running daemon: restarts, compaction, damage, kill -9, the command line."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from gatewayd import ops
from gatewayd.history import schema
from gatewayd.journal.files import list_segments
from gatewayd.journal.reader import JournalReader
from gatewayd.gateway import restore_backup
from tests.conftest import Daemon, DaemonProcess, run_cli, wait_for
from tests.devices.helpers import receive_json, register, send_json
from tests.terminals.termsim import SimTerminal, punches


async def _device(core) -> str:
    return (await ops.call(core, "device.create", {"name": "boiler"}))["id"]


async def _telemetry(core, device_id: str, values: range, pad: str = "") -> None:
    await core.hub.publish_many([("device.telemetry", {"device_id": device_id, "name": "boiler", "connector": "ws",
                                                       "payload": {"t": v, **({"pad": pad} if pad else {})}})
                                 for v in values])


async def _get(daemon, path: str, **params) -> dict:
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth, timeout=10) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _answers(daemon, device_id: str) -> tuple:
    items = (await _get(daemon, f"/api/devices/{device_id}/telemetry", limit=1000))["items"]
    series = await _get(daemon, f"/api/devices/{device_id}/telemetry", key="t", every="1h")
    comms = await _get(daemon, "/api/communications", device=device_id, limit=1000)
    punched = await _get(daemon, "/api/attendance", sn="HIST1")
    return ([i["payload"]["t"] for i in items], [(p["count"], p["mean"]) for p in series["points"]],
            [(c["seq"], c["type"]) for c in comms["items"]], [p["id"] for p in punched["punches"]])


async def _punch(daemon, n: int) -> None:
    await ops.call(daemon.core, "terminal.add", {"sn": "HIST1"})
    sim = SimTerminal("HIST1")
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as client:
        assert (await sim.post(client, sim.sendlog_body(punches(n)))).json()["result"] is True


async def test_queries_answer_the_same_across_a_restart(daemon):
    device_id = await _device(daemon.core)
    await _telemetry(daemon.core, device_id, range(30))
    await _punch(daemon, 7)
    before = await _answers(daemon, device_id)
    assert before[0] == list(range(30)) and before[1] == [(30, 14.5)] and len(before[2]) == 30
    assert len(before[3]) == 7
    paged, after = [], None
    while True:  # pages of 7 give the same items
        page = await _get(daemon, "/api/communications", device=device_id, limit=7, **({"after": after} if after else {}))
        paged += [(c["seq"], c["type"]) for c in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert paged == before[2]
    await daemon.restart()
    assert await _answers(daemon, device_id) == before
    assert daemon.core.state.attendance.recent == {}  # everything is in the store: nothing kept in memory


async def test_a_resend_is_recognised_from_the_store_after_memory_let_go(daemon):
    await ops.call(daemon.core, "terminal.add", {"sn": "HIST2"})
    sim = SimTerminal("HIST2")
    body = sim.sendlog_body(punches(5))
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as client:
        assert (await sim.post(client, body)).json()["count"] == 5
        await daemon.core.history.wait_applied()
        assert daemon.core.state.attendance.recent == {}
        again = (await sim.post(client, body)).json()
    assert again["result"] is True and again["count"] == 5  # acknowledged again, as received
    assert len((await _get(daemon, "/api/attendance", sn="HIST2"))["punches"]) == 5


@pytest.fixture
def daemon_sections():
    return {"journal": {"segment_bytes": 8192, "history_max_bytes": 1 << 20}, "history": {"commit_interval": 60}}


async def test_compaction_keeps_every_segment_the_store_has_not_applied(daemon, monkeypatch):
    core = daemon.core
    device_id = await _device(core)
    await _telemetry(core, device_id, range(400), pad="x" * 3000)  # 1.2 MB: over the journal's budget
    await core.history.wait_applied()  # an early commit; the next is a minute away
    cursor = await wait_for(lambda: core.cursors.load("history") == core.history.position and core.history.position)
    await _telemetry(core, device_id, range(400, 800), pad="x" * 3000)

    async def store_cannot_keep_up(*args, **kwargs):  # compaction asks it to catch up first; here it lags
        pass

    monkeypatch.setattr(core.history, "wait_applied", store_cannot_keep_up)
    result = await ops.call(core, "journal.compact", {})
    monkeypatch.undo()
    assert result["segments_deleted"], "the budget should have made compaction delete something"
    assert core.cursors.load("history") == cursor == core.history.position
    first_kept = list_segments(core.journal_dir)[0][0]
    assert 1 < first_kept <= cursor + 1
    after = [r.seq for r in JournalReader(core.journal_dir).records(after_seq=cursor)]
    assert after == list(range(cursor + 1, core.hub.fanned_seq + 1))
    await core.history.wait_applied()
    items = (await _get(daemon, f"/api/devices/{device_id}/telemetry", limit=1000))["items"]
    assert [i["payload"]["t"] for i in items] == list(range(800))


async def test_a_damaged_store_is_set_aside_and_rebuilt(daemon):
    device_id = await _device(daemon.core)
    await _telemetry(daemon.core, device_id, range(20))
    await _punch(daemon, 3)
    before = await _answers(daemon, device_id)
    await daemon.stop()
    path = schema.store_path(daemon.state_dir)
    with open(path, "r+b") as handle:  # the header and the first pages: not a database any more
        handle.write(b"\xde\xad" * 4096)
    await daemon.start()
    assert path.with_name("history.db.damaged").exists()
    assert await _answers(daemon, device_id) == before
    assert daemon.core.history.rebuilds == 1
    # Damage met while running (a read that SQLite refuses): the worker rebuilds, queries wait.
    daemon.core.history.report_damage(sqlite3.DatabaseError("database disk image is malformed"))
    with trio.fail_after(10):
        while True:
            async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as client:
                response = await client.get(f"/api/devices/{device_id}/telemetry")
            if response.status_code == 200:
                break
            assert response.status_code == 503 and response.json()["code"] == "history_unavailable"
            await trio.sleep(0.05)
    assert daemon.core.history.rebuilds == 2
    assert await _answers(daemon, device_id) == before


async def test_backup_carries_the_store_and_restore_brings_it_back(daemon, tmp_path):
    device_id = await _device(daemon.core)
    await _telemetry(daemon.core, device_id, range(10))
    await _punch(daemon, 4)
    before = await _answers(daemon, device_id)
    result = await ops.call(daemon.core, "state.backup", {})
    restored = tmp_path / "restored"
    summary = restore_backup(Path(result["path"]), restored)
    assert summary["history"] == "restored" and schema.store_path(restored).exists()
    again = await Daemon(daemon.nursery, restored, {}).start()
    try:
        assert again.core.history.rebuilds == 0
        assert (await _answers(again, device_id))[0] == before[0]
        assert (await _answers(again, device_id))[3] == before[3]
    finally:
        await again.stop()


def _write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_kill_9_during_store_writes_loses_nothing_acknowledged(tmp_path):
    state = tmp_path / "state"
    config = _write_config(tmp_path / "g.toml", "[history]\ncommit_interval = 0.05\n")
    created = run_cli("device", "add", "sensor", "--state-dir", str(state), "--json")
    assert created.returncode == 0, created.stderr
    device = json.loads(created.stdout)
    token = json.loads(run_cli("apikey", "create", "t", "--state-dir", str(state), "--json").stdout)["key"]
    acked: list[int] = []

    async def traffic(port: int) -> None:
        async with open_websocket_url(f"ws://127.0.0.1:{port}/ws") as ws:
            await register(ws, device)
            for i in range(100_000):
                await send_json(ws, {"type": "telemetry", "payload": {"i": i}, "id": i})
                reply = await receive_json(ws)
                if reply.get("type") == "ack":
                    acked.append(i)

    daemon = DaemonProcess(state, ["--config", str(config)]).start()
    try:
        async def run() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(traffic, daemon.port)
                await wait_for(lambda: len(acked) >= 300, timeout=30)
                daemon.kill()  # in the middle of the traffic: store commits every 50 ms
                nursery.cancel_scope.cancel()

        try:
            trio.run(run)
        except BaseException as exc:  # the socket dies with the daemon
            if not daemon.proc.poll():
                raise
            del exc
    finally:
        daemon.stop()
    assert len(acked) >= 300
    daemon = DaemonProcess(state, ["--config", str(config)]).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{daemon.port}", timeout=10) as client:
            items = client.get(f"/api/devices/{device['id']}/telemetry", params={"limit": 10000},
                               headers={"Authorization": f"Bearer {token}"}).json()["items"]
    finally:
        daemon.stop()
    stored = [item["payload"]["i"] for item in items]
    assert len(stored) == len(set(stored))
    missing = sorted(set(acked) - set(stored))
    assert not missing, f"acknowledged but not in the history store: {missing[:10]}"


def test_cli_verify_rebuild_and_status(tmp_path):
    state = tmp_path / "state"
    assert run_cli("device", "add", "sensor", "--state-dir", str(state)).returncode == 0
    verify = run_cli("journal", "verify", "--state-dir", str(state))
    assert verify.returncode == 0 and "history store OK" in verify.stdout, verify.stdout + verify.stderr
    rebuilt = run_cli("history", "rebuild", "--state-dir", str(state))
    assert rebuilt.returncode == 0 and "rebuilt" in rebuilt.stdout, rebuilt.stderr
    status = json.loads(run_cli("history", "status", "--state-dir", str(state), "--json").stdout)
    assert status["seq"] == status["journal_seq"] > 0 and status["rows"]["punches"] == 0
    path = schema.store_path(state)
    assert not path.with_name("history.db.damaged").exists()  # nothing was wrong with it
    size = path.stat().st_size
    with open(path, "r+b") as handle:  # damage in the middle of the file
        handle.seek(size // 2)
        handle.write(b"\x00\xff" * 2048)
    verify = run_cli("journal", "verify", "--state-dir", str(state))
    assert verify.returncode != 0 and "history store DAMAGED" in verify.stdout, verify.stdout

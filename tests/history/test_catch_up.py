"""A long stretch of journal is applied to the history store by a child process: same store, resumable, safe."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
import trio

from gatewayd.connectors import CONNECTORS
from gatewayd.gateway import comm_tables
from gatewayd.history import catch_up, schema
from gatewayd.history.writer import open_writer
from gatewayd.journal.files import segment_path
from gatewayd.journal.lock import JournalLock, JournalLocked
from gatewayd.journal.record import Record, encode_line
from gatewayd.runtime import open_core
from tests.conftest import make_settings
from tests.history.test_store import dump

DEVICE = "00000000-0000-4000-8000-000000000001"
T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)


def _write_journal(state: Path, messages: int) -> int:
    """A journal of telemetry (a message a minute) with a batch of punches every 50 messages."""
    journal = state / "journal"
    journal.mkdir(parents=True)
    state.chmod(0o700)
    seq = 0
    with open(segment_path(journal, 1), "wb") as handle:
        def add(type_: str, data: dict) -> None:
            nonlocal seq
            seq += 1
            ts = (T0 + timedelta(minutes=seq)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            handle.write(encode_line(Record(seq, ts, type_, data)))

        add("device.created", {"device_id": DEVICE, "name": "d1", "kind": "ws", "tags": [], "token_hash": "sha256:0"})
        add("terminal.added", {"sn": "T1", "name": "door", "tz": "UTC", "actor": "test"})
        for i in range(messages):
            add("device.telemetry", {"device_id": DEVICE, "name": "d1", "connector": "ws",
                                     "payload": {"t": i % 40, "h": i}})
            if i % 50 == 0:
                local = (T0 + timedelta(minutes=seq)).strftime("%Y-%m-%d %H:%M:%S")
                add("attendance.punches", {"source": "T1", "connector": "http", "tz": "UTC", "held": False,
                                           "cmd": "sendlog", "punches": [
                                               {"enrollid": i, "time": local, "mode": 1, "inout": 0, "event": 0,
                                                "utc": local.replace(" ", "T") + "Z"}]})
    return seq


def _reference(state: Path, tmp_path: Path, last: int) -> dict:
    """The store applied here, in one go."""
    tables = comm_tables()
    writer = open_writer(tmp_path / "reference.db", tables.communications, tables.comm_mappers.keys())
    try:
        catch_up.apply_journal(writer, state / "journal", last)
        return dump(writer.conn)
    finally:
        writer.close()


def _stored(state: Path) -> dict:
    writer = open_writer(schema.store_path(state))
    try:
        return dump(writer.conn)
    finally:
        writer.close()


def _start(state: Path) -> int:
    """Open the state directory as the daemon does at start; returns the store's position."""
    async def main() -> int:
        async with open_core(make_settings(state), online=False, connectors=CONNECTORS) as core:
            return core.history.position

    return trio.run(main)


@pytest.fixture
def children(monkeypatch) -> list[bool]:
    """Child processes take over from 100 records on; what each run_child returned."""
    monkeypatch.setattr(catch_up, "CHILD_RECORDS", 100)
    outcomes: list[bool] = []
    run_child = catch_up.run_child

    async def counted(*args, **kwargs) -> bool:
        outcomes.append(await run_child(*args, **kwargs))
        return outcomes[-1]

    monkeypatch.setattr(catch_up, "run_child", counted)
    return outcomes


def test_a_long_stretch_is_applied_by_a_child_and_gives_the_same_store(tmp_path, children):
    state = tmp_path / "state"
    last = _write_journal(state, 600)
    assert _start(state) == last
    assert children == [True]
    assert _stored(state) == _reference(state, tmp_path, last)
    assert _start(state) == last and children == [True]  # nothing left to do: no child


def test_a_short_stretch_stays_in_the_daemon(tmp_path, children):
    state = tmp_path / "state"
    last = _write_journal(state, 60)
    assert _start(state) == last
    assert children == []
    assert _stored(state) == _reference(state, tmp_path, last)


def test_a_child_killed_mid_way_leaves_a_store_the_next_start_completes(tmp_path, children):
    state = tmp_path / "state"
    last = _write_journal(state, 20_000)
    lock = JournalLock(state / "journal")
    lock.acquire()
    types = sorted(comm_tables().comm_mappers)
    request = orjson.dumps({"store": str(schema.store_path(state)), "journal": str(state / "journal"),
                            "until": last, "comm_types": types, "batch": 20, "parent": os.getpid(), "log_level": "warning"})
    child = subprocess.Popen(catch_up.child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=catch_up._child_environment(), pass_fds=(lock.fileno(),))
    try:
        child.stdin.write(request)
        child.stdin.close()
        assert child.stdout.readline().startswith(b"applied ")  # a batch is committed
        child.kill()
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        lock.release()
    position = _stored(state)["meta"]
    position = dict(position)["position"]
    assert 0 < int(position) < last
    assert _start(state) == last
    assert children == [True]  # the rest was long enough for a child again
    assert _stored(state) == _reference(state, tmp_path, last)


def test_the_daemon_catches_up_itself_when_the_child_fails(tmp_path, children, monkeypatch):
    state = tmp_path / "state"
    last = _write_journal(state, 600)
    monkeypatch.setattr(catch_up, "child_command", lambda: [sys.executable, "-c", "raise SystemExit(3)"])
    assert _start(state) == last
    assert children == [False]
    assert _stored(state) == _reference(state, tmp_path, last)


def test_a_child_stalling_is_killed_and_the_daemon_catches_up(tmp_path, children, monkeypatch):
    state = tmp_path / "state"
    last = _write_journal(state, 600)
    monkeypatch.setattr(catch_up, "STALL_SECONDS", 0.5)
    monkeypatch.setattr(catch_up, "child_command",
                        lambda: [sys.executable, "-c", "import time; time.sleep(60)"])
    assert _start(state) == last
    assert children == [False]
    assert _stored(state) == _reference(state, tmp_path, last)


def test_a_child_whose_daemon_is_gone_writes_nothing(tmp_path):
    state = tmp_path / "state"
    last = _write_journal(state, 200)
    request = orjson.dumps({"store": str(schema.store_path(state)), "journal": str(state / "journal"),
                            "until": last, "comm_types": [], "batch": 20, "parent": os.getpid() + 1_000_000,
                            "log_level": "warning"})
    done = subprocess.run(catch_up.child_command(), input=request, capture_output=True,
                          env=catch_up._child_environment(), timeout=60)
    assert done.returncode != 0 and b"daemon is gone" in done.stderr
    assert not schema.store_path(state).exists()


def test_a_child_holds_the_journal_lock_it_was_given(tmp_path):
    """A child left behind by a daemon killed with -9 keeps the state directory locked until it stops."""
    journal = tmp_path / "journal"
    lock = JournalLock(journal)
    lock.acquire()
    child = subprocess.Popen(catch_up.child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=catch_up._child_environment(),
                             pass_fds=(lock.fileno(),))
    try:
        os.close(lock.fileno())  # the daemon is gone (its descriptors closed, its lock never released)
        lock._fd = None
        with pytest.raises(JournalLocked):
            JournalLock(journal).acquire()
    finally:
        child.stdin.close()  # no request: the child stops
        child.wait(30)
    again = JournalLock(journal)
    again.acquire()
    again.release()


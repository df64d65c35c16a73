"""kill -9 of the daemon after a PUSH batch is durable and before `OK: <n>`: nothing lost or doubled."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from ..conftest import DaemonProcess, run_cli
from .pushsim import attlog_row
from .test_crash import CRASH_HOOK, _stored


def _batch(first: datetime, n: int) -> bytes:
    return "".join(attlog_row(10 + i % 3, first + timedelta(minutes=i)) + "\n" for i in range(n)).encode()


def test_kill_between_durable_write_and_ok(tmp_path):
    state = tmp_path / "state"
    assert run_cli("terminal", "add", "PKILL1", "--tz", "Europe/Rome", "--encoding", "gbk",
                   "--state-dir", str(state)).returncode == 0
    first, second = _batch(datetime(2026, 6, 12, 8, 0), 100), _batch(datetime(2026, 6, 13, 8, 0), 100)
    daemon = DaemonProcess(state, env={"PYTHONPATH": str(CRASH_HOOK), "GATEWAYD_TEST_CRASH_AFTER_INGEST": "2"})
    daemon.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{daemon.port}", timeout=10) as client:
            upload = {"SN": "PKILL1", "table": "ATTLOG"}
            assert client.post("/iclock/cdata", params={**upload, "Stamp": "100"}, content=first).text == "OK: 100"
            try:
                client.post("/iclock/cdata", params={**upload, "Stamp": "200"}, content=second)
                raise AssertionError("the daemon answered although it should have died first")
            except httpx.TransportError:
                pass  # no reply: the terminal keeps its stamp at 100 and sends the batch again
        assert daemon.wait(10) == -9
    finally:
        daemon.stop()
    assert len(_stored(state, "PKILL1")) == 200  # the unanswered batch was durable already

    daemon = DaemonProcess(state).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{daemon.port}", timeout=10) as client:
            options = client.get("/iclock/cdata", params={"SN": "PKILL1", "options": "all"}).text
            assert "ATTLOGStamp=100\n" in options  # the stamp never runs ahead of an answered batch
            reply = client.post("/iclock/cdata", params={"SN": "PKILL1", "table": "ATTLOG", "Stamp": "200"},
                                content=second)
            assert reply.text == "OK: 100"
            assert "ATTLOGStamp=200\n" in client.get("/iclock/cdata", params={"SN": "PKILL1", "options": "all"}).text
    finally:
        daemon.stop()
    keys = _stored(state, "PKILL1")
    assert len(keys) == 200 == len(set(keys))
    shown = run_cli("terminal", "show", "PKILL1", "--json", "--state-dir", str(state))
    terminal = json.loads(shown.stdout)
    assert (terminal["protocol"], terminal["encoding"], terminal["effective_tz"]) == ("push", "gbk", "Europe/Rome")
    # The command line queues PUSH commands with the same checks as the API.
    queued = run_cli("terminal", "command", "PKILL1", "raw", "--params", '{"line": "CHECK"}', "--state-dir", str(state))
    assert queued.returncode == 0 and "(raw for PKILL1): queued" in queued.stdout, queued.stderr
    refused = run_cli("terminal", "command", "PKILL1", "setuserinfo", "--params", '{"enrollid": 1, "name": "A\\tB"}',
                      "--state-dir", str(state))
    assert refused.returncode != 0 and "tab or a line break" in refused.stderr


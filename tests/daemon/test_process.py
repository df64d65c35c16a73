"""gatewayd as a real process: CLI with and without it, SIGTERM, sd_notify, SIGHUP, lock."""

import json
import signal
import socket
import time

import pytest

from tests.conftest import DaemonProcess, run_cli


def test_cli_works_without_a_daemon(tmp_path):
    state = str(tmp_path / "state")
    created = run_cli("apikey", "create", "ops", "--state-dir", state, "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("gwk_")
    listed = run_cli("apikey", "list", "--state-dir", state, "--json")
    assert [k["key_id"] for k in json.loads(listed.stdout)] == [key["key_id"]]
    assert key["key"] not in listed.stdout
    revoked = run_cli("apikey", "revoke", key["key_id"], "--state-dir", state)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    missing = run_cli("apikey", "revoke", "nope", "--state-dir", state)
    assert missing.returncode == 1 and "not_found" in missing.stderr
    journal = (tmp_path / "state" / "journal").glob("segment-*.jsonl")
    text = "".join(p.read_text() for p in journal)
    assert key["key"] not in text, "an API key must never be stored in clear"


def test_cli_talks_to_a_running_daemon_and_sigterm_keeps_everything(tmp_path):
    state = tmp_path / "state"
    daemon = DaemonProcess(state).start()
    try:
        created = run_cli("apikey", "create", "live", "--state-dir", str(state), "--json")
        assert created.returncode == 0, created.stderr
        key_id = json.loads(created.stdout)["key_id"]
        # The daemon holds the lock; an offline writer would be refused, so this went over the socket.
        repair = run_cli("journal", "repair", "--state-dir", str(state))
        assert repair.returncode == 1 and "stop the daemon" in repair.stderr
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
        assert time.monotonic() - started < 5
    finally:
        daemon.stop()
    listed = run_cli("apikey", "list", "--state-dir", str(state), "--json")
    assert key_id in [k["key_id"] for k in json.loads(listed.stdout)]
    verify = run_cli("journal", "verify", "--state-dir", str(state))
    assert verify.returncode == 0 and "journal OK" in verify.stdout
    export = run_cli("journal", "export", "--state-dir", str(state), "--type", "server.*")
    types = [json.loads(line)["type"] for line in export.stdout.splitlines()]
    assert types == ["server.started", "server.stopping"]


def test_second_daemon_on_the_same_state_is_refused(tmp_path):
    state = tmp_path / "state"
    first = DaemonProcess(state).start()
    try:
        second = run_cli("serve", "--state-dir", str(state), "--port", "0", "--udp-port", "0", timeout=30)
        assert second.returncode != 0
        assert "in use by another process" in second.stderr + second.stdout
    finally:
        first.stop()


def test_sd_notify_ready_and_stopping_on_a_real_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    daemon = DaemonProcess(tmp_path / "state", env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
    try:
        daemon.start()
        messages = []
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        daemon.signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert daemon.wait(10) == 0
    finally:
        daemon.stop()
        sock.close()


def test_sighup_reloads_live_settings(tmp_path):
    config_path = tmp_path / "gatewayd.toml"
    config_path.write_text("[presence]\nws_timeout = 90\n")
    state = tmp_path / "state"
    daemon = DaemonProcess(state, extra_args=["--config", str(config_path)]).start()
    try:
        config_path.write_text("[presence]\nws_timeout = 45\n[server]\ngraceful_timeout = 3.0\n")
        daemon.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        found = None
        while time.monotonic() < deadline and found is None:
            export = run_cli("journal", "export", "--state-dir", str(state), "--type", "config.reloaded")
            lines = export.stdout.splitlines()
            found = json.loads(lines[0]) if lines else None
            if found is None:
                time.sleep(0.05)
        assert found is not None, "no config.reloaded record"
        assert found["data"] == {"applied": ["presence.ws_timeout"], "needs_restart": ["server.graceful_timeout"]}
    finally:
        daemon.stop()


def test_torn_tail_is_cut_at_start_with_a_warning(tmp_path):
    state = tmp_path / "state"
    assert run_cli("apikey", "create", "a", "--state-dir", str(state)).returncode == 0
    segment = next((state / "journal").glob("segment-*.jsonl"))
    with open(segment, "ab") as handle:
        handle.write(b'{"seq":99,"ts":"2026-')
    daemon = DaemonProcess(state).start()
    daemon.stop()
    output = daemon.output()
    assert "torn tail" in output
    assert list((state / "journal").glob("segment-*.torn-*"))
    assert run_cli("journal", "verify", "--state-dir", str(state)).returncode == 0

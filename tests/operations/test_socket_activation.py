"""Socket activation: gatewayd serves on a listening socket inherited as fd 3 (LISTEN_FDS=1)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, wait_for

# What systemd does, in miniature: put the socket on fd 3, name our own pid, exec the service.
EXEC_WRAPPER = """
import os, sys
fd, pid = int(sys.argv[1]), sys.argv[2]
os.dup2(fd, 3)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid()) if pid == "self" else pid
os.execv(sys.executable, [sys.executable, "-m", "gatewayd", *sys.argv[3:]])
"""


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


async def _start(state: Path, sock: socket.socket, pid: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-c", EXEC_WRAPPER, str(sock.fileno()), pid, "serve", "--state-dir", str(state),
         "--host", "127.0.0.1", "--port", "0", "--udp-port", "0"],
        cwd=ROOT, pass_fds=[sock.fileno()], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    runfile = state / "run.json"
    try:
        await wait_for(lambda: runfile.exists() or proc.poll() is not None, timeout=20, interval=0.02)
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
    return proc, json.loads(runfile.read_text())


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.stdout.read().decode(errors="replace")


async def test_serves_on_the_socket_systemd_passes(tmp_path):
    sock = _listening_socket()
    port = sock.getsockname()[1]
    proc, info = await _start(tmp_path / "state", sock, "self")
    try:
        assert info["http_port"] == port
        sock.close()  # only the daemon's copy remains: answers now prove it accepts on it
        async with httpx.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    assert "using the listening socket passed by systemd" in output


async def test_sockets_meant_for_another_process_are_ignored(tmp_path):
    sock = _listening_socket()
    try:
        proc, info = await _start(tmp_path / "state", sock, str(os.getpid()))
        try:
            assert info["http_port"] != sock.getsockname()[1]
            async with httpx.AsyncClient() as client:
                health = await client.get(f"http://127.0.0.1:{info['http_port']}/healthz", timeout=5)
            assert health.status_code == 200
        finally:
            output = _stop(proc)
        assert "passed by systemd" not in output
    finally:
        sock.close()


def test_the_socket_unit_feeds_the_service():
    unit = (ROOT / "systemd" / "gatewayd.socket").read_text()
    assert "ListenStream=3000" in unit and "WantedBy=sockets.target" in unit
    service = (ROOT / "systemd" / "gatewayd.service").read_text()
    # The service must accept what the socket unit passes and keep needing no privileges.
    assert "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" in service
    assert "CapabilityBoundingSet=\n" in service and "User=gatewayd" in service

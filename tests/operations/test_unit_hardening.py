"""The unit's MemoryDenyWriteExecute=yes must not break gatewayd: the same restriction (the kernel's
PR_SET_MDWE, inherited across exec) on a real daemon process that starts, serves, seals LoRaWAN keys
with AES-GCM and hashes a password."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ROOT, run_cli, wait_for

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1

EXEC_WRAPPER = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE failed: errno %d" % ctypes.get_errno())
os.execv(sys.executable, [sys.executable, "-m", "gatewayd", *sys.argv[1:]])
"""


def _mdwe_supported() -> bool:
    probe = subprocess.run([sys.executable, "-c", EXEC_WRAPPER.replace('os.execv(', 'sys.exit(0) or os.execv(')],
                           capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _mdwe_supported(), reason="the kernel lacks PR_SET_MDWE (Linux >= 6.3)")


async def test_gatewayd_runs_with_memory_deny_write_execute(tmp_path):
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", EXEC_WRAPPER, "serve", "--state-dir", str(state), "--host",
                             "127.0.0.1", "--port", "0", "--udp-port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        await wait_for(lambda: (state / "run.json").exists() or proc.poll() is not None, timeout=20, interval=0.02)
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
        port = json.loads((state / "run.json").read_text())["http_port"]
        added = run_cli("device", "add", "tracker", "--lorawan", "--dev-eui", "0732227a557d8679", "--app-eui",
                        "006c3b194374ac7f", "--app-key", "2B7E151628AED2A6ABF7158809CF4F3C",
                        "--state-dir", str(state), "--json")
        assert added.returncode == 0, added.stderr
        changed = run_cli("admin", "set-password", "--password-stdin", "--state-dir", str(state),
                          input="correct horse battery\n")
        assert changed.returncode == 0, changed.stderr
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).json()["status"] == "ok"
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0, proc.stdout.read().decode(errors="replace")

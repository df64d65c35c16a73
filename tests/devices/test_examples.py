"""The device examples in examples/ run unchanged (bar URL, id and token) against a real gatewayd."""

import os
import shutil
import subprocess
import sys

import pytest
import trio

from tests.conftest import ROOT, wait_for

from .helpers import api, create_device, telemetry_items

NODE_DIR = ROOT / "examples" / "node"


def _npm_install() -> None:
    if (NODE_DIR / "node_modules" / "ws").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot fetch the `ws` package for the Node.js example")
    subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True,
                   capture_output=True, timeout=180)


async def _run_example(daemon, argv: list[str], cwd, extra_env: dict) -> None:
    device = await create_device(daemon, "example")
    env = dict(os.environ, WS_URL=f"{daemon.ws_url}/ws", DEVICE_ID=device["id"], TOKEN=device["token"],
               EXIT_AFTER_MESSAGES="2", **extra_env)
    async with trio.open_nursery() as nursery:
        process = await nursery.start(lambda task_status: trio.run_process(
            argv, cwd=cwd, env=env, capture_stdout=True, capture_stderr=True, check=False,
            task_status=task_status))
        try:
            # registered -> Online; telemetry stored; then a command ends the run (2nd message)
            await wait_for(lambda: daemon.core.state.devices.get(device["id"])["online"], timeout=15)
            await wait_for(lambda: daemon.core.state.devices.latest.get(device["id"]), timeout=15)
            response = await api(daemon, "POST", f"/api/devices/{device['id']}/commands",
                                 json={"command": "blink", "payload": {"times": 3}})
            assert response.status_code == 201
            with trio.fail_after(15):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    assert process.returncode == 0, process.stderr.decode(errors="replace")[-2000:]
    await wait_for(lambda: not daemon.core.state.devices.get(device["id"])["online"])
    payload = (await telemetry_items(daemon.core, device["id"]))[0]["payload"]
    assert set(payload) == {"temperature", "humidity"}
    events = [e["type"] for e in daemon.core.state.devices.events if e["device_id"] == device["id"]]
    assert events[:2] == ["device_connected", "device_online"]
    return device


async def test_node_example(daemon):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Node.js device example cannot run here")
    await trio.to_thread.run_sync(_npm_install)
    await _run_example(daemon, [node, "device.js"], NODE_DIR, {"TELEMETRY_INTERVAL_MS": "100"})


async def test_python_example(daemon):
    device = await _run_example(daemon, [sys.executable, "device.py"], ROOT / "examples" / "python",
                                {"TELEMETRY_INTERVAL": "0.1"})
    commands = daemon.core.state.commands.for_device(device["id"])
    await wait_for(lambda: commands[0]["state"] in ("acknowledged", "sent"))

"""Shared fixtures: a real gatewayd on 127.0.0.1 (in-process or as a subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, settings as hypothesis_settings

from gatewayd import config, ops
from gatewayd.daemon import serve
from gatewayd.connectors import CONNECTORS

ROOT = Path(__file__).resolve().parents[1]

# Timing depends on the machine's load, the properties do not: no deadlines, no speed checks.
hypothesis_settings.register_profile(
    "gatewayd", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gatewayd"))


def make_settings(state_dir: Path, **sections) -> config.Settings:
    data = {"server": {"host": "127.0.0.1", "port": 0, "udp_port": 0, "state_dir": str(state_dir),
                       "graceful_timeout": 2.0}}
    for section, values in sections.items():
        if isinstance(values, list):  # an array of tables ([[webhooks]])
            data[section] = values
        else:
            data.setdefault(section, {}).update(values)
    return config.from_mapping(data, "<test>")


class Daemon:
    """A gatewayd running in the test's own trio loop. `restart()` keeps the state directory."""

    def __init__(self, nursery: trio.Nursery, state_dir: Path, sections: dict, connectors=CONNECTORS):
        self.nursery = nursery
        self.state_dir = state_dir
        self.sections = sections
        self.connectors = connectors
        self.core = None
        self._done: trio.Event | None = None
        self.api_key: str | None = None

    async def start(self) -> "Daemon":
        settings = make_settings(self.state_dir, **self.sections)
        done = trio.Event()
        self._done = done

        async def run(task_status=trio.TASK_STATUS_IGNORED):
            try:
                await serve(settings, connectors=self.connectors, handle_signals=False, task_status=task_status)
            finally:
                done.set()

        self.core = await self.nursery.start(run)
        if self.api_key is None:
            self.api_key = (await ops.call(self.core, "apikey.create", {"name": "tests"}))["key"]
        return self

    async def stop(self) -> None:
        if self.core is not None and self._done is not None:
            self.core.stopping.set()
            with trio.fail_after(10):
                await self._done.wait()
            self.core = None

    async def restart(self) -> "Daemon":
        await self.stop()
        return await self.start()

    @property
    def port(self) -> int:
        return self.core.http_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def udp_port(self) -> int | None:
        return self.core.extras.get("udp_port")

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def daemon_sections() -> dict:
    """Override in a test module to pass configuration sections to the `daemon` fixture."""
    return {}


@pytest.fixture
def daemon_connectors() -> tuple:
    """Override in a test directory or module to run the `daemon` fixture with more connectors."""
    return CONNECTORS


@pytest.fixture
async def daemon(nursery, tmp_path, daemon_sections, daemon_connectors):
    d = Daemon(nursery, tmp_path / "state", daemon_sections, daemon_connectors)
    await d.start()
    yield d
    await d.stop()


class DaemonProcess:
    """gatewayd as a real subprocess (for signals, kill -9 and sd_notify)."""

    def __init__(self, state_dir: Path, extra_args: list[str] | None = None, env: dict | None = None):
        self.state_dir = Path(state_dir)
        self.extra_args = extra_args or []
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> "DaemonProcess":
        runfile = self.state_dir / "run.json"
        if runfile.exists():
            runfile.unlink()
        env = dict(os.environ)
        env.update(self.env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gatewayd", "serve", "--state-dir", str(self.state_dir), "--host",
             "127.0.0.1", "--port", "0", "--udp-port", "0", *self.extra_args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not runfile.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gatewayd exited early: {self.proc.stdout.read().decode()}")
            if time.monotonic() > deadline:
                raise TimeoutError("gatewayd did not start")
            time.sleep(0.02)
        info = json.loads(runfile.read_text())
        self.port = info["http_port"]
        self.udp_port = info["udp_port"]
        return self

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def run_cli(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gatewayd", *args], cwd=ROOT, input=input,
                          capture_output=True, text=True, timeout=timeout)


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01):
    """Wait until predicate() is truthy (re-checked every `interval`); fail after `timeout`."""
    with trio.fail_after(timeout):
        while True:
            value = predicate()
            if value:
                return value
            await trio.sleep(interval)

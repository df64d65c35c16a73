"""Shared pieces of the WebSocket benchmarks: a throw-away state directory with devices, a gatewayd
subprocess on 127.0.0.1, its memory, and worker processes that drive client connections.

Nothing here talks to anything but 127.0.0.1. With GATEWAYD_BENCH_PROFILE=FILE in the environment the
daemon runs under cProfile and writes its profile to FILE when it stops (figures are then not comparable).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def raise_nofile(wanted: int) -> int:
    """Raise RLIMIT_NOFILE (children inherit it). Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Every simulated device connects from 127.0.0.1: the per-source admission limits, meant for one
# address among many, are lifted so that a bench measures the server, not that limit.
LOOPBACK_FLEET = {"max_unregistered_per_source": 100_000, "handshakes_per_second_per_source": 1e6,
                  "handshake_burst_per_source": 1_000_000}


def write_config(directory: Path, sections: dict[str, dict]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path = directory / "gatewayd.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def create_devices(state_dir: Path, count: int, keys: list | None = None) -> list[dict]:
    """`count` WebSocket devices, created offline in one go (group commit makes it quick). An API key
    is appended to `keys` when a list is given."""
    from gatewayd import config, ops
    from gatewayd.gateway import open_core

    settings = config.from_mapping({"server": {"state_dir": str(state_dir)}}, "<bench>")
    devices: list[dict] = []
    limit = trio.CapacityLimiter(500)

    async def one(i: int) -> None:
        async with limit:
            created = await ops.call(core, "device.create", {"name": f"bench-{i}"})
            devices.append({"id": created["id"], "token": created["token"]})

    async with open_core(settings, online=False) as core:
        if keys is not None:
            keys.append((await ops.call(core, "apikey.create", {"name": "bench"}))["key"])
        async with trio.open_nursery() as nursery:
            for i in range(count):
                nursery.start_soon(one, i)
    return devices


class Server:
    """gatewayd serve as a subprocess, logging to a file in its state directory."""

    def __init__(self, state_dir: Path, config_path: Path | None = None, *, root: Path = ROOT,
                 entry: tuple[str, ...] = ("-m", "gatewayd")):
        """`root`: the checkout whose gatewayd runs (another one serves as a baseline); `entry`: how
        python starts it (a `-c` program for a variant)."""
        self.state_dir = state_dir
        self.config_path = config_path
        self.root = root
        self.entry = entry
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, timeout: float = 60) -> "Server":
        runfile = self.state_dir / "run.json"
        runfile.unlink(missing_ok=True)
        profile = os.environ.get("GATEWAYD_BENCH_PROFILE")
        prefix = ["-m", "cProfile", "-o", profile] if profile else []
        args = [sys.executable, *prefix, *self.entry, "serve", "--state-dir", str(self.state_dir),
                "--host", "127.0.0.1", "--port", "0", "--udp-port", "0"]
        if self.config_path:
            args += ["--config", str(self.config_path)]
        self.log = open(self.state_dir / "server.log", "ab")
        self.proc = subprocess.Popen(args, cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not runfile.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gatewayd did not start; see {self.state_dir / 'server.log'}")
            time.sleep(0.05)
        self.port = json.loads(runfile.read_text())["http_port"]
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def temp_dir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=prefix)


def spawn_worker(module_file: str, args: list[str]) -> subprocess.Popen:
    """A load-generator process running `module_file --worker ARGS`, talking by lines on stdin/stdout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, module_file, "--worker", *args], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The worker's next status line (raises when it exits or stays silent too long)."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError("worker said nothing in time")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"worker exited ({proc.poll()})")
    return line.strip()

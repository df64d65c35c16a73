"""Where the memory of one registered WebSocket device goes: a tracemalloc breakdown per connection,
the stack (hypercorn, h11, wsproto, trio, the standard library) beside ours (gatewayd).

    .venv/bin/python bench/connection_memory.py [--devices 500]

gatewayd runs in this process under tracemalloc (127.0.0.1, port chosen by the system); the devices
connect from a bench/connections_ws.py worker process, so no client allocation is counted. Python
allocations only: RSS (bench/connections_ws.py) also holds the kernel-side and allocator overhead.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wsload import ROOT, create_devices, raise_nofile, read_line, spawn_worker  # noqa: E402

SITE = ("site-packages", "dist-packages")


def owner(filename: str) -> str:
    """'gatewayd', a third-party package name, or 'stdlib'."""
    path = Path(filename)
    parts = path.parts
    if "gatewayd" in parts and not any(s in parts for s in SITE):
        return "gatewayd"
    for marker in SITE:
        if marker in parts:
            rest = parts[parts.index(marker) + 1:]
            return rest[0].split(".")[0] if rest else "?"
    return "stdlib"


async def measure(devices: int) -> None:
    from gatewayd import config
    from gatewayd.gateway import serve

    with tempfile.TemporaryDirectory(prefix="gatewayd-bench-connmem-") as tmp:
        state = Path(tmp) / "state"
        creds = await create_devices(state, devices)
        (Path(tmp) / "devices.json").write_text(json.dumps(creds))
        settings = config.from_mapping({
            "server": {"host": "127.0.0.1", "port": 0, "udp_port": 0, "state_dir": str(state)},
            "log": {"level": "warning"},
            "devices": {"max_unregistered_per_source": 100_000, "handshakes_per_second_per_source": 1e6,
                        "handshake_burst_per_source": 1_000_000}}, "<bench>")
        async with trio.open_nursery() as nursery:
            core = await nursery.start(lambda task_status: serve(settings, handle_signals=False,
                                                                  task_status=task_status))
            await trio.sleep(0.5)
            tracemalloc.start(1)
            before = tracemalloc.take_snapshot()
            worker = spawn_worker(str(ROOT / "bench" / "connections_ws.py"),
                                  [f"ws://127.0.0.1:{core.http_port}/ws", str(Path(tmp) / "devices.json"), "0",
                                   str(devices), "3600", "200"])
            try:
                line = await trio.to_thread.run_sync(read_line, worker, 300)
                await trio.sleep(1.0)
                after = tracemalloc.take_snapshot()
            finally:
                worker.kill()
                worker.wait(10)
            tracemalloc.stop()
            by_owner: Counter = Counter()
            for stat in after.compare_to(before, "filename"):
                by_owner[owner(stat.traceback[0].filename)] += stat.size_diff
            total = sum(by_owner.values())
            print(f"{devices} devices registered ({line.strip()}); Python allocations per connection "
                  f"(tracemalloc, by the file that allocated):")
            for name, size in by_owner.most_common():
                if abs(size) / devices >= 50:
                    print(f"  {name:14s} {size / devices / 1024:7.2f} KiB")
            ours = by_owner["gatewayd"]
            print(f"  {'total':14s} {total / devices / 1024:7.2f} KiB: ours {ours / devices / 1024:.2f} KiB, "
                  f"stack {(total - ours) / devices / 1024:.2f} KiB")
            print("  ours, largest lines:")
            lines = [stat for stat in after.compare_to(before, "lineno")
                     if owner(stat.traceback[0].filename) == "gatewayd"]
            for stat in sorted(lines, key=lambda st: -st.size_diff)[:6]:
                frame = stat.traceback[0]
                where = Path(frame.filename).relative_to(ROOT) if ROOT in Path(frame.filename).parents else frame.filename
                print(f"    {stat.size_diff / devices:7.0f} B  {where}:{frame.lineno}")
            core.stopping.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500)
    args = parser.parse_args()
    raise_nofile(args.devices + 1000)
    began = time.monotonic()
    trio.run(measure, args.devices)
    print(f"took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()

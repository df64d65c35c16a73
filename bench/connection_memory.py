"""Where the memory of one registered WebSocket device goes: a tracemalloc breakdown per connection,
the stack (hypercorn, h11, wsproto, trio, the standard library) beside ours (gatewayd).

    .venv/bin/python bench/connection_memory.py [--devices 500] [--top 6] [--callers] [--references bare,bare-ping,wsproto]

gatewayd runs in this process under tracemalloc (127.0.0.1, port chosen by the system); the devices
connect from a bench/connections_ws.py worker process, so no client allocation is counted. Python
allocations only: RSS (bench/connections_ws.py) also holds the kernel-side and allocator overhead.
The same clients then hold connections on references served the same way (bench/raw_server.py's
applications): hypercorn with a bare ASGI app, the same with hypercorn's ping task, and wsproto
on a plain trio stream, so the figures show what the server stack costs before any of ours.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from functools import partial
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wsload import LOOPBACK_FLEET, ROOT, create_devices, raise_nofile, read_line, spawn_worker  # noqa: E402

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


def _where(filename: str) -> str:
    path = Path(filename)
    if ROOT in path.parents:
        return str(path.relative_to(ROOT))
    for marker in SITE:
        if marker in path.parts:
            return str(Path(*path.parts[path.parts.index(marker) + 1:]))
    return path.name


async def _held(port: int, creds: Path, devices: int, depth: int = 1) -> tuple[str, tracemalloc.Snapshot, tracemalloc.Snapshot]:
    """Snapshots before and with `devices` registered connections held on 127.0.0.1:`port`."""
    tracemalloc.start(depth)
    before = tracemalloc.take_snapshot()
    worker = spawn_worker(str(ROOT / "bench" / "connections_ws.py"),
                          [f"ws://127.0.0.1:{port}/ws", str(creds), "0", str(devices), "3600", "200"])
    try:
        line = await trio.to_thread.run_sync(read_line, worker, 300)
        await trio.sleep(1.0)
        after = tracemalloc.take_snapshot()
    finally:
        worker.kill()
        worker.wait(10)
        tracemalloc.stop()
    return line.strip(), before, after


def _by_owner(before, after) -> Counter:
    by_owner: Counter = Counter()
    for stat in after.compare_to(before, "filename"):
        by_owner[owner(stat.traceback[0].filename)] += stat.size_diff
    return by_owner


PLUMBING = {"trio", "stdlib", "attr", "outcome", "sniffio", "?"}


def _caller(traceback: tracemalloc.Traceback) -> str:
    """The most recent frame outside the plumbing (trio, the standard library): the line whose
    connection, task or cancel scope made the allocation."""
    for frame in reversed(list(traceback)):
        if owner(frame.filename) not in PLUMBING and not frame.filename.startswith("<"):
            return f"{_where(frame.filename)}:{frame.lineno}"
    frame = traceback[-1]
    return f"{_where(frame.filename)}:{frame.lineno}"


def _print_callers(before, after, devices: int, top: int) -> None:
    by_caller: Counter = Counter()
    for stat in after.compare_to(before, "traceback"):
        by_caller[_caller(stat.traceback)] += stat.size_diff
    print(f"  by calling line (the innermost frame outside trio and the standard library):")
    for where, size in by_caller.most_common(top):
        print(f"    {size / devices:7.0f} B  {where}")


async def measure_gatewayd(devices: int, top: int, callers: bool = False) -> float:
    from gatewayd import config
    from gatewayd.gateway import serve

    with tempfile.TemporaryDirectory(prefix="gatewayd-bench-connmem-") as tmp:
        state = Path(tmp) / "state"
        creds = await create_devices(state, devices)
        (Path(tmp) / "devices.json").write_text(json.dumps(creds))
        settings = config.from_mapping({
            "server": {"host": "127.0.0.1", "port": 0, "udp_port": 0, "state_dir": str(state)},
            "log": {"level": "warning"},
            "devices": dict(LOOPBACK_FLEET)}, "<bench>")
        async with trio.open_nursery() as nursery:
            core = await nursery.start(lambda task_status: serve(settings, handle_signals=False,
                                                                  task_status=task_status))
            await trio.sleep(0.5)
            line, before, after = await _held(core.http_port, Path(tmp) / "devices.json", devices,
                                              depth=40 if callers else 1)
            by_owner = _by_owner(before, after)
            total = sum(by_owner.values())
            print(f"gatewayd: {devices} devices registered ({line}); Python allocations per connection "
                  f"(tracemalloc, by the file that allocated):")
            for name, size in by_owner.most_common():
                if abs(size) / devices >= 50:
                    print(f"  {name:14s} {size / devices / 1024:7.2f} KiB")
            ours = by_owner["gatewayd"]
            print(f"  {'total':14s} {total / devices / 1024:7.2f} KiB: ours {ours / devices / 1024:.2f} KiB, "
                  f"stack {(total - ours) / devices / 1024:.2f} KiB")
            every = after.compare_to(before, "lineno")
            for title, keep in (("ours", lambda name: name == "gatewayd"), ("stack", lambda name: name != "gatewayd")):
                print(f"  {title}, largest lines:")
                lines = [stat for stat in every if keep(owner(stat.traceback[0].filename))]
                for stat in sorted(lines, key=lambda st: -st.size_diff)[:top]:
                    frame = stat.traceback[0]
                    print(f"    {stat.size_diff / devices:7.0f} B  {_where(frame.filename)}:{frame.lineno}")
            if callers:
                _print_callers(before, after, devices, top)
            core.stopping.set()
    return total / devices


REFERENCES = {
    "bare": "hypercorn + bare ASGI app (the daemon's hypercorn settings: no per-connection ping task)",
    "bare-ping": "the same with hypercorn's per-connection ping task (websocket_ping_interval 20 s, read_timeout 60 s)",
    "wsproto": "wsproto on a trio socket stream, one task per connection, no hypercorn",
}


async def measure_reference(kind: str, devices: int) -> float:
    """The same clients against bench/raw_server.py's applications, served in this process."""
    import raw_server
    from hypercorn.trio import serve as hypercorn_serve

    from gatewayd.config import Settings
    from gatewayd.daemon import _hypercorn_config

    with tempfile.TemporaryDirectory(prefix="gatewayd-bench-connmem-") as tmp:
        creds = Path(tmp) / "devices.json"
        creds.write_text(json.dumps([{"id": f"raw-{i}", "token": "tok_x"} for i in range(devices)]))
        async with trio.open_nursery() as nursery:
            if kind == "wsproto":
                listeners = await nursery.start(partial(trio.serve_tcp, raw_server.wsproto_connection, 0,
                                                        host="127.0.0.1", backlog=1024))
                port = listeners[0].socket.getsockname()[1]
            else:
                config = _hypercorn_config(Settings())
                config.bind = ["127.0.0.1:0"]
                config.backlog = 1024
                if kind == "bare-ping":
                    config.websocket_ping_interval, config.read_timeout = 20, 60
                binds = await nursery.start(lambda task_status: hypercorn_serve(raw_server.bare_app, config,
                                                                                task_status=task_status))
                port = int(binds[0].rsplit(":", 1)[1])
            await trio.sleep(0.5)
            _, before, after = await _held(port, creds, devices)
            nursery.cancel_scope.cancel()
    return sum(_by_owner(before, after).values()) / devices


async def measure(devices: int, top: int, references: list[str], callers: bool) -> None:
    ours = await measure_gatewayd(devices, top, callers)
    if references:
        print(f"references, same clients, same run (Python allocations per connection):")
    for kind in references:
        size = await measure_reference(kind, devices)
        print(f"  {kind:12s} {size / 1024:7.2f} KiB  (gatewayd {ours / size:.2f}x)  {REFERENCES[kind]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--top", type=int, default=6, help="largest allocating lines shown, ours and the stack's")
    parser.add_argument("--callers", action="store_true",
                        help="also attribute every allocation to its calling line outside trio and the standard "
                             "library (deep tracebacks: slower)")
    parser.add_argument("--references", default="bare,bare-ping,wsproto",
                        help=f"comma-separated, from {', '.join(REFERENCES)} ('' for none)")
    args = parser.parse_args()
    raise_nofile(args.devices + 1000)
    began = time.monotonic()
    references = [kind for kind in args.references.split(",") if kind]
    unknown = set(references) - set(REFERENCES)
    if unknown:
        parser.error(f"unknown references: {', '.join(sorted(unknown))}")
    trio.run(measure, args.devices, args.top, references, args.callers)
    print(f"took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()

"""CPU per message of the daemon with CPython's own allocator (pymalloc) and with the C library's
(PYTHONMALLOC=malloc), in the same run (127.0.0.1 only).

    .venv/bin/python bench/allocator.py [--connections 100] [--messages 200] [--rounds 4] [--workers 2]

Two `gatewayd serve` processes of this checkout, one started with PYTHONMALLOC=malloc, each with its
own `--connections` WebSocket devices. Rounds alternate between them (the one not measured is
SIGSTOPped); each round sends `--messages` telemetry frames per connection (bench/ingest_ws.py's
load generator) and reads the daemon's CPU time over it. Reported: the median CPU microseconds per
message of each, their ratio per round pair, and the RSS of each at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_ws import drive  # noqa: E402
from wsload import Server, create_devices, raise_nofile, rss_kib, temp_dir, write_config  # noqa: E402

VARIANTS = {"pymalloc": None, "malloc": "malloc"}


def start(tmp: Path, name: str, args) -> tuple[Server, Path]:
    state = tmp / name
    devices = trio.run(create_devices, state, args.connections)
    creds = tmp / f"{name}.json"
    creds.write_text(json.dumps(devices))
    config = write_config(state, {"log": {"level": "warning"},
                                  "devices": {"rate_per_second": 1e6, "rate_burst": 1_000_000}})
    saved = os.environ.pop("PYTHONMALLOC", None)
    if VARIANTS[name]:
        os.environ["PYTHONMALLOC"] = VARIANTS[name]
    try:
        server = Server(state, config).start()
    finally:
        os.environ.pop("PYTHONMALLOC", None)
        if saved is not None:
            os.environ["PYTHONMALLOC"] = saved
    return server, creds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200, help="telemetry frames per connection per round")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per allocator")
    args = parser.parse_args()
    raise_nofile(args.connections * 8 + 1000)
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with temp_dir("gatewayd-bench-alloc-") as tmp:
        servers = {}
        try:
            for name in VARIANTS:
                servers[name] = start(Path(tmp), name, args)
            for _ in range(args.rounds):
                for name, (server, creds) in servers.items():
                    others = [s for n, (s, _) in servers.items() if n != name]
                    for other in others:
                        os.kill(other.pid, signal.SIGSTOP)
                    try:
                        _, per_message = drive(f"ws://127.0.0.1:{server.port}/ws", creds, args, server.pid)
                    finally:
                        for other in others:
                            os.kill(other.pid, signal.SIGCONT)
                    cpu[name].append(per_message)
            rss = {name: rss_kib(server.pid) for name, (server, _) in servers.items()}
        finally:
            for server, _ in servers.values():
                server.stop()
    print(f"{args.connections} connections x {args.messages} frames per round, {args.rounds} rounds each, alternating")
    for name in VARIANTS:
        print(f"{name:9} CPU per message: {statistics.median(cpu[name]):7.1f} us (rounds: "
              f"{', '.join(f'{c:.1f}' for c in cpu[name])}); RSS {rss[name] / 1024:.1f} MiB")
    pairs = [m / p for p, m in zip(cpu["pymalloc"], cpu["malloc"])]
    print(f"malloc / pymalloc CPU per message: {statistics.median(pairs):.3f} (median of round pairs: "
          f"{', '.join(f'{r:.3f}' for r in pairs)})")


if __name__ == "__main__":
    main()

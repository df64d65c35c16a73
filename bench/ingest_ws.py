"""Telemetry ingest end to end over /ws, beside the raw stack, in the same run (127.0.0.1 only).

    .venv/bin/python bench/ingest_ws.py [--connections 100] [--messages 400] [--workers 2] [--rounds 2]
                                        [--compare-tree DIR] [--no-references]

gatewayd: each frame is decoded and validated, rate-limited, journaled (group commit; the last frame
of each connection carries an `id`, acknowledged once durable, which also proves every earlier frame
of that connection is on disk), applied to the state, and fanned out to one subscriber: a monitoring
client on /monitor/communications that reads every resulting frame.
References: hypercorn + quart-trio with a route that only receives the same frames, and hypercorn
with a bare ASGI application doing the same (bench/raw_server.py [--bare]).
Both are driven by the same load generator (separate processes, trio-websocket clients, frames
encoded in advance). Targets: gatewayd >= 70 % of quart-trio, >= 45 % of bare ASGI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio

from wsload import (ROOT, Server, cpu_seconds, create_devices, raise_nofile, read_line, rss_kib, spawn_worker, temp_dir,
                    write_config)


# -- worker: a share of the connections -----------------------------------------------------------------
async def worker(url: str, devices: list[dict], messages: int) -> None:
    from trio_websocket import open_websocket_url

    frames = [json.dumps({"type": "telemetry", "payload": {"temperature": 20 + i % 10 / 10, "humidity": 40 + i % 7,
                                                            "seq": i}}) for i in range(messages - 1)]
    go = trio.Event()
    ready = 0
    done = 0
    all_ready = trio.Event()
    all_done = trio.Event()

    async def connection(device: dict) -> None:
        nonlocal ready, done
        async with open_websocket_url(url, max_message_size=1 << 20) as ws:
            await ws.send_message(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
            reply = json.loads(await ws.get_message())
            assert reply.get("type") == "registered", reply
            ready += 1
            if ready == len(devices):
                all_ready.set()
            await go.wait()
            for frame in frames:
                await ws.send_message(frame)
            await ws.send_message(json.dumps({"type": "telemetry", "payload": {"last": True}, "id": "last"}))
            while True:
                reply = json.loads(await ws.get_message())
                if reply.get("type") == "ack":
                    break
                if reply.get("type") == "error":
                    raise RuntimeError(reply)
            done += 1
            if done == len(devices):
                all_done.set()

    async with trio.open_nursery() as nursery:
        for device in devices:
            nursery.start_soon(connection, device)
        await all_ready.wait()
        print("ready", flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        began = time.perf_counter()
        go.set()
        await all_done.wait()
        print(f"done {time.perf_counter() - began:.4f}", flush=True)


def worker_main(argv: list[str]) -> None:
    url, path, start, end, messages = argv[0], argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    devices = json.loads(Path(path).read_text())[start:end]
    trio.run(worker, url, devices, messages)


# -- subscriber: one monitoring client reading every communication --------------------------------------
async def subscriber(url: str, stop: trio.Event, counts: dict) -> None:
    from trio_websocket import ConnectionClosed, open_websocket_url

    try:
        async with open_websocket_url(url) as ws:
            counts["open"] = True
            while not stop.is_set():
                with trio.move_on_after(0.2):
                    await ws.get_message()
                    counts["frames"] += 1
    except ConnectionClosed as exc:
        counts["closed"] = f"{exc.reason.code} {exc.reason.reason}"
    except Exception as exc:  # the route may be missing in a partial build: report it
        counts["closed"] = f"{type(exc).__name__}: {exc}"


# -- driver ---------------------------------------------------------------------------------------------
def drive(url: str, creds: Path, args, server_pid: int) -> tuple[float, float]:
    """One round: connect and register everything, then send; returns messages per second and the
    server's CPU microseconds per message while they were sent."""
    share = -(-args.connections // args.workers)
    workers = [spawn_worker(__file__, [url, str(creds), str(w * share), str(min(args.connections, (w + 1) * share)),
                                       str(args.messages)]) for w in range(args.workers)]
    try:
        for p in workers:
            assert read_line(p, 120) == "ready"
        cpu_before = cpu_seconds(server_pid)
        for p in workers:
            p.stdin.write("go\n")
            p.stdin.flush()
        took = max(float(read_line(p, 600).split()[1]) for p in workers)
        cpu = cpu_seconds(server_pid) - cpu_before
        for p in workers:
            p.wait(30)
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
    total = args.connections * args.messages
    return total / took, cpu / total * 1e6


def run_gatewayd(tmp: Path, args, trees: tuple[Path, ...] = (ROOT,)) -> list[tuple[list[tuple[float, float]], dict, int]]:
    """Each tree's daemon with its own state and monitoring client, all running at once; their
    rounds alternate (one round each, the order swapped every round), so a busy shared box weighs on
    every tree alike. Returns each tree's (rounds, subscriber counts, RSS after)."""
    sides = []
    for i, tree in enumerate(trees):
        side = tmp / f"gatewayd-{i}"
        side.mkdir()
        keys: list[str] = []
        devices = trio.run(create_devices, side / "state", args.connections, keys)
        creds = side / "devices.json"
        creds.write_text(json.dumps(devices))
        config = write_config(side, {"log": {"level": "warning"},
                                     "devices": {"rate_per_second": 1e6, "rate_burst": 1_000_000},
                                     "monitor": {"queue_size": 1_000_000}})
        sides.append({"server": Server(side / "state", config, root=tree), "key": keys[0], "creds": creds,
                      "counts": {"frames": 0, "open": False, "closed": None}, "rates": [], "rss": 0})
    try:
        for side in sides:
            side["server"].start()

        async def with_subscribers() -> None:
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                for side in sides:
                    nursery.start_soon(subscriber, f"ws://127.0.0.1:{side['server'].port}/monitor/communications"
                                                   f"?key={side['key']}", stop, side["counts"])
                with trio.fail_after(10):
                    while not all(side["counts"]["open"] or side["counts"]["closed"] for side in sides):
                        await trio.sleep(0.05)
                for round_ in range(args.rounds):
                    for side in (sides if round_ % 2 == 0 else sides[::-1]):
                        server = side["server"]
                        side["rates"].append(await trio.to_thread.run_sync(
                            drive, f"ws://127.0.0.1:{server.port}/ws", side["creds"], args, server.pid))
                with trio.move_on_after(30):  # let the subscribers catch up before counting
                    while any(side["counts"]["frames"] < args.rounds * args.connections * args.messages
                              and side["counts"]["closed"] is None for side in sides):
                        await trio.sleep(0.1)
                stop.set()

        trio.run(with_subscribers)
        for side in sides:
            side["rss"] = rss_kib(side["server"].pid)
    finally:
        for side in sides:
            side["server"].stop()
    return [(side["rates"], side["counts"], side["rss"]) for side in sides]


def run_raw(tmp: Path, args, bare: bool = False) -> list[tuple[float, float]]:
    portfile = tmp / ("bare.json" if bare else "raw.json")
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "raw_server.py"), str(portfile),
                             *(["--bare"] if bare else [])], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (portfile.exists() and portfile.read_text()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the raw server did not start")
            time.sleep(0.05)
        port = json.loads(portfile.read_text())["port"]
        creds = tmp / "raw-devices.json"
        creds.write_text(json.dumps([{"id": f"raw-{i}", "token": "tok_x"} for i in range(args.connections)]))
        return [drive(f"ws://127.0.0.1:{port}/ws", creds, args, proc.pid) for _ in range(args.rounds)]
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--messages", type=int, default=400, help="telemetry frames per connection per round")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare-tree", action="append", default=[], metavar="DIR",
                        help="also run the daemon of this checkout (with its own .venv), rounds alternating")
    parser.add_argument("--no-references", action="store_true", help="skip the raw quart-trio and bare ASGI runs")
    args = parser.parse_args()
    raise_nofile(args.connections * 4 + 1000)
    total = args.connections * args.messages
    print(f"{args.connections} connections x {args.messages} telemetry frames ({total} per round), "
          f"{args.workers} generator processes, {args.rounds} rounds, best round reported; {os.cpu_count()} CPUs")
    trees = (ROOT, *(Path(tree).resolve() for tree in args.compare_tree))
    with temp_dir("gatewayd-bench-ingest-") as tmp:
        tmp = Path(tmp)
        raw = run_raw(tmp, args) if not args.no_references else []
        bare = run_raw(tmp, args, bare=True) if not args.no_references else []
        sides = run_gatewayd(tmp, args, trees)
    ours, counts, rss = sides[0]
    best_ours = max(ours)[0]
    if raw:
        (best_raw, raw_cpu), (best_bare, bare_cpu) = max(raw), max(bare)
        print(f"raw quart-trio receive-only : {best_raw:9.0f} msg/s  (rounds: {', '.join(f'{r:.0f}' for r, _ in raw)}); "
              f"server CPU {raw_cpu:.0f} us/msg")
        print(f"raw bare ASGI receive-only  : {best_bare:9.0f} msg/s  (rounds: {', '.join(f'{r:.0f}' for r, _ in bare)}); "
              f"server CPU {bare_cpu:.0f} us/msg")
    for tree, (rounds, _, _) in zip(trees, sides):
        best, cpu = max(rounds)
        label = "gatewayd end to end" if tree == ROOT else f"gatewayd of {tree}"
        print(f"{label:28s}: {best:9.0f} msg/s  (rounds: {', '.join(f'{r:.0f}' for r, _ in rounds)}); "
              f"server CPU {cpu:.0f} us/msg (rounds: {', '.join(f'{c:.1f}' for _, c in rounds)}; "
              f"median {statistics.median(c for _, c in rounds):.1f})")
    if raw:
        print(f"ratio gatewayd / raw        : {best_ours / best_raw:9.1%}  (target >= 70 %); gatewayd / bare ASGI "
              f"{best_ours / best_bare:.1%} (target >= 45 %)")
    print(f"load average now {os.getloadavg()[0]:.1f}")
    for tree, (_, side_counts, side_rss) in zip(trees, sides):
        print(f"subscriber of {'gatewayd' if tree == ROOT else tree}: {side_counts['frames']} of {args.rounds * total} "
              f"communications received" + (f"; closed: {side_counts['closed']}" if side_counts["closed"] else "")
              + f"; server RSS after: {side_rss / 1024:.0f} MiB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()

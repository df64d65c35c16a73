"""Many registered WebSocket devices held open on one gatewayd (127.0.0.1 only), then a reconnect storm.

    .venv/bin/python bench/connections_ws.py [--devices 10000] [--workers 2] [--hold 35] [--ping 30]

Reports the server's RSS idle (devices created, no connection) and with every device registered,
i.e. bytes per connection above the idle daemon (target: at most 25 KB), then how long all devices
take to register again when they all reconnect at once (and how many attempts failed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import trio

from wsload import (LOOPBACK_FLEET, ROOT, Server, cpu_seconds, create_devices, raise_nofile, read_line, rss_kib, spawn_worker, temp_dir,
                    write_config)


# -- worker: holds a share of the devices ---------------------------------------------------------------
async def worker(url: str, devices: list[dict], ping_every: float, ramp_limit: int) -> None:
    """Connect and register every device (at most `ramp_limit` handshakes at once, 0 = all at once),
    print "up <failed attempts>", ping every `ping_every` s, print "pings <n>" for each "report" line."""
    from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

    registered = 0
    failures = 0
    pings = 0
    all_up = trio.Event()
    ramp = trio.CapacityLimiter(ramp_limit or len(devices))
    reasons: dict[str, int] = {}

    async def hold(device: dict) -> None:
        nonlocal registered, failures, pings
        borrower = object()
        while True:
            await ramp.acquire_on_behalf_of(borrower)
            holding = True
            try:
                async with open_websocket_url(url, connect_timeout=60, disconnect_timeout=5) as ws:
                    await ws.send_message(json.dumps({"type": "register", "device_id": device["id"],
                                                      "token": device["token"]}))
                    with trio.fail_after(60):
                        reply = json.loads(await ws.get_message())
                    if reply.get("type") != "registered":
                        raise RuntimeError(reply)
                    ramp.release_on_behalf_of(borrower)
                    holding = False
                    registered += 1
                    if registered == len(devices):
                        all_up.set()
                    next_ping = trio.current_time() + random.uniform(0, ping_every)
                    while True:
                        await trio.sleep_until(next_ping)
                        await ws.send_message('{"type":"ping"}')
                        with trio.fail_after(60):
                            await ws.get_message()
                        pings += 1
                        next_ping += ping_every
            except (ConnectionClosed, HandshakeError, OSError, RuntimeError, trio.TooSlowError) as exc:
                failures += 1
                key = f"{type(exc).__name__}: {str(exc)[:60]}"
                reasons[key] = reasons.get(key, 0) + 1
                if holding:
                    ramp.release_on_behalf_of(borrower)
                registered -= 0 if holding else 1
                await trio.sleep(random.uniform(0.1, 0.5))

    async def control() -> None:
        await all_up.wait()
        print(f"[worker {os.getpid()}] all {len(devices)} registered; failed attempts by reason: "
              f"{json.dumps(reasons)[:300]}", file=sys.stderr, flush=True)
        print(f"up {failures}", flush=True)
        while (await trio.to_thread.run_sync(sys.stdin.readline)).strip() == "report":
            print(f"pings {pings} {registered} {failures}", flush=True)
        nursery.cancel_scope.cancel()

    async def progress() -> None:
        while True:
            await trio.sleep(15)
            print(f"[worker {os.getpid()}] registered {registered}/{len(devices)}, failed attempts {failures} "
                  f"{json.dumps(reasons)[:300]}", file=sys.stderr, flush=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(progress)
        nursery.start_soon(control)
        for device in devices:
            nursery.start_soon(hold, device)


def worker_main(argv: list[str]) -> None:
    url, path, start, end, ping, ramp = argv[0], argv[1], int(argv[2]), int(argv[3]), float(argv[4]), int(argv[5])
    raise_nofile(end - start + 1000)
    devices = json.loads(open(path).read())[start:end]
    try:
        trio.run(worker, url, devices, ping, ramp)
    except BaseException as exc:
        import traceback
        traceback.print_exc()
        print(f"[worker {os.getpid()}] ended by {type(exc).__name__}", file=sys.stderr, flush=True)
        raise


# -- driver ---------------------------------------------------------------------------------------------
def connect_all(url: str, creds: Path, count: int, args, ramp: int = 200) -> tuple[list, int, float]:
    """Start the workers; returns (workers, retried attempts, seconds until all registered)."""
    share = -(-count // args.workers)
    began = time.monotonic()
    workers = [spawn_worker(__file__, [url, str(creds), str(w * share), str(min(count, (w + 1) * share)),
                                       str(args.ping), str(ramp)]) for w in range(args.workers)]
    failures = sum(int(read_line(p, 900).split()[1]) for p in workers)
    return workers, failures, time.monotonic() - began


def stop_workers(workers: list) -> None:
    for p in workers:
        if p.poll() is None:
            p.kill()
            p.wait(10)


RAW_KINDS = {"": "quart-trio", "--bare": "bare ASGI", "--bare --ping": "bare ASGI with hypercorn's ping task",
             "--wsproto": "wsproto on a trio stream"}


def raw_baseline(tmp: Path, args, kind: str = "") -> float:
    """KiB per connection of the raw stack (bench/raw_server.py: quart-trio, a bare ASGI app under
    hypercorn, or wsproto on a trio stream without hypercorn) with the same clients."""
    portfile = tmp / f"raw{kind.replace(' ', '')}.json"
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "raw_server.py"), str(portfile),
                             *kind.split()], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        while not (portfile.exists() and portfile.read_text()):
            if proc.poll() is not None:
                raise RuntimeError("the raw server did not start")
            time.sleep(0.05)
        time.sleep(1.0)
        idle = rss_kib(proc.pid)
        creds = tmp / "raw-devices.json"
        creds.write_text(json.dumps([{"id": f"raw-{i}", "token": "tok_x"} for i in range(args.raw_devices)]))
        url = f"ws://127.0.0.1:{json.loads(portfile.read_text())['port']}/ws"
        cpu = cpu_seconds(proc.pid)
        workers, _, took = connect_all(url, creds, args.raw_devices, args)
        cpu = cpu_seconds(proc.pid) - cpu
        loaded = rss_kib(proc.pid)
        per_conn = (loaded - idle) / args.raw_devices
        print(f"raw {RAW_KINDS[kind]}: {args.raw_devices} connections in {took:.1f} s (server CPU "
              f"{cpu / args.raw_devices * 1e3:.2f} ms each); RSS {idle / 1024:.1f} -> "
              f"{loaded / 1024:.1f} MiB = {per_conn:.1f} KiB per connection")
        return per_conn
    finally:
        stop_workers(workers)
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--raw-devices", type=int, default=None, help="connections for the raw baseline "
                        "(default: --devices; 0 skips it)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hold", type=float, default=35.0, help="seconds to hold all connections (pings flow)")
    parser.add_argument("--ping", type=float, default=30.0, help="each device pings this often")
    args = parser.parse_args()
    if args.raw_devices is None:
        args.raw_devices = args.devices
    limit = raise_nofile(max(args.devices, args.raw_devices) + 2000)
    print(f"RLIMIT_NOFILE {limit}; {args.devices} devices, {args.workers} client processes, "
          f"ping every {args.ping:g} s, hold {args.hold:g} s; load average now {os.getloadavg()[0]:.1f}")

    with temp_dir("gatewayd-bench-conn-") as tmp:
        tmp = Path(tmp)
        raw = raw_baseline(tmp, args) if args.raw_devices else None
        bare = raw_baseline(tmp, args, "--bare") if args.raw_devices else None
        bare_ping = raw_baseline(tmp, args, "--bare --ping") if args.raw_devices else None
        floor = raw_baseline(tmp, args, "--wsproto") if args.raw_devices else None
        state = tmp / "state"
        began = time.monotonic()
        devices = trio.run(create_devices, state, args.devices)
        print(f"created {len(devices)} devices in {time.monotonic() - began:.1f} s")
        creds = tmp / "devices.json"
        creds.write_text(json.dumps(devices))
        config = write_config(tmp, {"log": {"level": "warning"}, "devices": dict(LOOPBACK_FLEET)})
        server = Server(state, config).start()
        workers = []
        try:
            time.sleep(1.0)
            idle = rss_kib(server.pid)
            print(f"gatewayd idle RSS ({args.devices} devices, no connection): {idle / 1024:.1f} MiB")
            cpu = cpu_seconds(server.pid)
            workers, failures, took = connect_all(f"ws://127.0.0.1:{server.port}/ws", creds, args.devices, args)
            cpu = cpu_seconds(server.pid) - cpu
            loaded = rss_kib(server.pid)
            per_conn = (loaded - idle) / args.devices
            print(f"all {args.devices} registered in {took:.1f} s ({args.devices / took:.0f}/s, "
                  f"{failures} retried attempts; server CPU {cpu / args.devices * 1e3:.2f} ms each)")
            print(f"gatewayd RSS with all registered: {loaded / 1024:.1f} MiB -> {per_conn:.1f} KiB "
                  f"({per_conn * 1.024:.1f} KB) per connection above idle (target <= 25 KB)"
                  + (f"; quart-trio {raw:.1f} KiB (ratio {per_conn / raw:.2f}), bare ASGI {bare:.1f} KiB "
                     f"(ratio {per_conn / bare:.2f}), bare ASGI with hypercorn's ping task {bare_ping:.1f} KiB, "
                     f"wsproto on trio {floor:.1f} KiB" if raw and bare else ""))
            time.sleep(args.hold)
            held = rss_kib(server.pid)
            print(f"after holding {args.hold:g} s: RSS {held / 1024:.1f} MiB -> "
                  f"{(held - idle) / args.devices:.1f} KiB per connection")
            for p in workers:
                p.stdin.write("report\n")
            pings = sum(int(read_line(p, 120).split()[1]) for p in workers)
            print(f"pings answered while held: {pings}")
            stop_workers(workers)  # every device drops at once (killed, no close handshake) ...
            cpu = cpu_seconds(server.pid)
            workers, storm_failures, took = connect_all(f"ws://127.0.0.1:{server.port}/ws", creds, args.devices,
                                                        args, ramp=0)  # ... and all reconnect at once
            cpu = cpu_seconds(server.pid) - cpu
            clients_cpu = sum(cpu_seconds(p.pid) for p in workers)
            print(f"reconnect storm: all {args.devices} registered again {took:.1f} s after reconnecting at once "
                  f"(clients start included); failed attempts (retried): {storm_failures}; CPU: server "
                  f"{cpu:.1f} s, load generators {clients_cpu:.1f} s; load average now {os.getloadavg()[0]:.1f}")
            online = rss_kib(server.pid)
            print(f"gatewayd RSS after the storm: {online / 1024:.1f} MiB")
        finally:
            stop_workers(workers)
            server.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()

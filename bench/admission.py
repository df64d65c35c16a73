"""Idle WebSockets from one address: how long a device elsewhere then takes to register.

    .venv/bin/python bench/admission.py [--idle 1000] [--tries 5] [--patience 30] [--settle 3] [--reopen 0]

gatewayd runs as a subprocess on 127.0.0.1. `--idle` clients on 127.0.0.1 each open a WebSocket
handshake at once and hold it without sending a frame (with `--reopen S`, they open another as soon
as the daemon closes theirs, or S seconds after a refusal: a connection flood); `--settle` seconds
later, while they are held, a registered device connects from 127.0.0.2 and registers, `--tries`
times. Reported: registration time without the idle
sockets (the reference, same run), with them, and the ratio; handshakes accepted and refused; RSS.
A registration that does not succeed within `--patience` seconds counts as failed. Stops by itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wsload import Server, create_devices, raise_nofile, rss_kib, temp_dir  # noqa: E402

from tests.reliability.rawws import RawWebSocket, Rejected  # noqa: E402


async def register_once(port: int, device: dict, source: str, patience: float) -> float | None:
    """Seconds from connect to `registered`, or None (refused, closed or out of patience)."""
    began = time.perf_counter()
    with trio.move_on_after(patience):
        try:
            ws = await RawWebSocket.connect(port, "/ws", source=source, timeout=patience)
        except (Rejected, OSError, ConnectionError):
            return None
        try:
            await ws.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
            reply = json.loads(await ws.receive(patience))
        except (ConnectionError, OSError):
            return None
        finally:
            ws.close()
        return time.perf_counter() - began if reply.get("type") == "registered" else None
    return None


async def registration_times(port: int, device: dict, tries: int, patience: float) -> list[float | None]:
    return [await register_once(port, device, "127.0.0.2", patience) for _ in range(tries)]


def summary(times: list[float | None]) -> str:
    done = [t for t in times if t is not None]
    if not done:
        return f"none of {len(times)} registered"
    return f"median {statistics.median(done) * 1000:.1f} ms, worst {max(done) * 1000:.1f} ms, " \
           f"{len(done)}/{len(times)} registered"


async def main(args) -> None:
    raise_nofile(args.idle + 1000)
    with temp_dir("gatewayd-admission-") as tmp:
        state = Path(tmp) / "state"
        device = (await create_devices(state, 1))[0]
        server = Server(state).start()
        try:
            reference = await registration_times(server.port, device, args.tries, args.patience)
            rss_before = rss_kib(server.pid)
            counts = {"open": 0, "opened": 0, "refused": 0, "failed": 0}

            async def hold_one() -> None:
                """Hold one idle handshake open; with --reopen, open another whenever the daemon
                closes or refuses it (`--reopen` seconds after a refusal)."""
                while True:
                    try:
                        ws = await RawWebSocket.connect(server.port, "/ws", source="127.0.0.1",
                                                        timeout=args.patience)
                    except (Rejected, OSError, ConnectionError, trio.TooSlowError) as exc:
                        counts["refused" if isinstance(exc, Rejected) else "failed"] += 1
                        if not args.reopen:
                            return
                        await trio.sleep(args.reopen)
                        continue
                    counts["open"] += 1
                    counts["opened"] += 1
                    try:
                        await ws.wait_closed(timeout=3600)
                    finally:
                        counts["open"] -= 1
                        ws.close()
                    if not args.reopen:
                        return

            began = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(args.idle):
                    nursery.start_soon(hold_one)
                await trio.sleep(args.settle)
                opening = time.perf_counter() - began
                open_then = counts["open"]
                # The device registers while the idle handshakes are held open (and re-opened).
                under_load = await registration_times(server.port, device, args.tries, args.patience)
                rss_during = rss_kib(server.pid)
                nursery.cancel_scope.cancel()
        finally:
            server.stop()
    ref = [t for t in reference if t is not None]
    load = [t for t in under_load if t is not None]
    mode = f"re-opened {args.reopen:g} s after each refusal" if args.reopen else "opened once"
    print(f"idle sockets from 127.0.0.1: {args.idle} at once, {mode}; {open_then} open after "
          f"{opening:.1f} s; in all {counts['opened']} opened, {counts['refused']} refused (HTTP 503), "
          f"{counts['failed']} failed otherwise")
    print(f"registration from 127.0.0.2 without them (reference): {summary(reference)}")
    print(f"registration from 127.0.0.2 with them open:          {summary(under_load)}")
    if ref and load:
        print(f"ratio (with / without, medians): {statistics.median(load) / statistics.median(ref):.2f}")
    print(f"daemon RSS: {rss_before / 1024:.1f} MiB before, {rss_during / 1024:.1f} MiB with the idle sockets")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--patience", type=float, default=30.0)
    parser.add_argument("--reopen", type=float, default=0.0,
                        help="re-open each idle socket once closed, this many seconds after a refusal (0: never)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds the idle handshakes get before the device registers")
    trio.run(main, parser.parse_args())

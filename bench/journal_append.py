"""Durable journal appends/s with 1, 10 and 100 publishers, beside a bare write+fdatasync loop.

The bare loop writes exactly the same bytes in exactly the same batches as the journal did and
fdatasyncs after each batch, so the ratio shows what the journal's own machinery costs.

The floor is the least any design on this stack can do: as many trio tasks, each appending a
ready-made journal line to a shared batch and waiting on it, and one task that writes and
fdatasyncs each batch in a worker thread and wakes its waiters, with the journal's own hand-over
(run_in_worker_thread) and wake-up (Batch). No encoding, no state, no checks, no stall watcher:
"of floor" shows how much of that ceiling the journal reaches.

On a shared machine the disk's speed changes from one second to the next: --rounds N runs the
three (journal, bare, floor) N times in turn and keeps each one's best round.
Usage: python bench/journal_append.py [--seconds 3] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio  # noqa: E402

from gatewayd.hub import Hub  # noqa: E402
from gatewayd.journal.fileops import FileOps  # noqa: E402
from gatewayd.journal.writer import Batch, JournalWriter, run_in_worker_thread  # noqa: E402
from gatewayd.gateway import build_state  # noqa: E402


class RecordingOps(FileOps):
    def __init__(self):
        self.batches: list[bytes] = []

    def write(self, fd, data):
        self.batches.append(bytes(data))
        return super().write(fd, data)


async def journal_run(directory: Path, publishers: int, seconds: float):
    ops = RecordingOps()
    state = build_state()
    writer = JournalWriter(directory, next_seq=1, fileops=ops, segment_bytes=1 << 34)
    hub = Hub(state, writer)
    count = 0
    payload = {"temperature": 22.5, "humidity": 48, "battery": 3.61}
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        began = time.perf_counter()
        deadline = began + seconds

        async def publisher(index: int):
            nonlocal count
            device = f"dev-{index}"
            while time.perf_counter() < deadline:
                await hub.publish("bench.telemetry", {"device_id": device, "payload": payload})
                count += 1

        async with trio.open_nursery() as pubs:
            for i in range(publishers):
                pubs.start_soon(publisher, i)
        elapsed = time.perf_counter() - began
        await writer.close()
    writer.close_files()
    return count, elapsed, writer.stats.batches, ops.batches


async def floor_run(path: Path, line: bytes, publishers: int, seconds: float):
    """Group commit at its barest: what one trio task per publisher plus a thread hop per batch cost."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    lines: list[bytes] = []
    settled = Batch()
    wake = trio.Event()
    count = batches = 0
    done = False

    def write_and_sync(data: bytes) -> None:
        os.write(fd, data)
        os.fdatasync(fd)

    async def writer():
        nonlocal lines, settled, wake, batches
        while not done or lines:
            if not lines:
                wake = trio.Event()
                await wake.wait()
                continue
            written, waiting = lines, settled
            lines, settled = [], Batch()
            await run_in_worker_thread(write_and_sync, b"".join(written))
            batches += 1
            waiting.settle()

    async def publisher():
        nonlocal count
        while time.perf_counter() < deadline:
            lines.append(line)
            batch = settled
            wake.set()
            await batch.wait()
            count += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        began = time.perf_counter()
        deadline = began + seconds
        async with trio.open_nursery() as pubs:
            for _ in range(publishers):
                pubs.start_soon(publisher)
        elapsed = time.perf_counter() - began
        done = True
        wake.set()
    os.close(fd)
    return count, elapsed, batches


def bare_loop(path: Path, batches: list[bytes]) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    began = time.perf_counter()
    for data in batches:
        os.write(fd, data)
        os.fdatasync(fd)
    elapsed = time.perf_counter() - began
    os.close(fd)
    return elapsed


def measure(publishers: int, seconds: float) -> dict[str, float]:
    """One round: the journal, the bare loop on the journal's batches, the floor."""
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as tmp:
        count, elapsed, fsyncs, batches = trio.run(journal_run, Path(tmp) / "j", publishers, seconds)
        bare = bare_loop(Path(tmp) / "bare.jsonl", batches)
        line = batches[0].split(b"\n", 1)[0] + b"\n"
        floor_count, floor_elapsed, floor_batches = trio.run(
            floor_run, Path(tmp) / "floor.jsonl", line, publishers, seconds)
    return {
        "rate": count / elapsed, "fsyncs": fsyncs / elapsed, "per_batch": count / max(fsyncs, 1),
        "bare": sum(b.count(b"\n") for b in batches) / bare,
        "floor": floor_count / floor_elapsed, "floor_per_batch": floor_count / max(floor_batches, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"{'publishers':>10} {'records/s':>11} {'fsyncs/s':>9} {'rec/batch':>9} {'bare rec/s':>11} "
          f"{'ratio':>6} {'floor rec/s':>11} {'floor/bare':>10} {'of floor':>8} {'floor rec/batch':>15}")
    for publishers in (1, 10, 100):
        rounds = [measure(publishers, args.seconds) for _ in range(max(args.rounds, 1))]
        journal = max(rounds, key=lambda r: r["rate"])
        bare = max(r["bare"] for r in rounds)
        floor = max(rounds, key=lambda r: r["floor"])
        rate, floor_rate = journal["rate"], floor["floor"]
        print(f"{publishers:>10} {rate:>11,.0f} {journal['fsyncs']:>9,.0f} {journal['per_batch']:>9.1f} "
              f"{bare:>11,.0f} {rate / bare:>6.0%} {floor_rate:>11,.0f} {floor_rate / bare:>10.0%} "
              f"{rate / floor_rate:>8.0%} {floor['floor_per_batch']:>15.1f}")


if __name__ == "__main__":
    main()

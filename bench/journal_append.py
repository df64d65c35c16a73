"""Durable journal appends/s with 1, 10 and 100 publishers, beside a bare write+fdatasync loop.

The bare loop writes exactly the same bytes in exactly the same batches as the journal did and
fdatasyncs after each batch, so the ratio shows what the journal's own machinery costs.
Usage: python bench/journal_append.py [--seconds 3]
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
from gatewayd.journal.writer import JournalWriter  # noqa: E402
from gatewayd.state import build_state  # noqa: E402


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


def bare_loop(path: Path, batches: list[bytes]) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    began = time.perf_counter()
    for data in batches:
        os.write(fd, data)
        os.fdatasync(fd)
    elapsed = time.perf_counter() - began
    os.close(fd)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"{'publishers':>10} {'records/s':>11} {'fsyncs/s':>9} {'rec/batch':>9} {'bare rec/s':>11} {'ratio':>6}")
    for publishers in (1, 10, 100):
        with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as tmp:
            count, elapsed, fsyncs, batches = trio.run(journal_run, Path(tmp) / "j", publishers, args.seconds)
            bare = bare_loop(Path(tmp) / "bare.jsonl", batches)
        rate = count / elapsed
        bare_rate = sum(b.count(b"\n") for b in batches) / bare
        print(f"{publishers:>10} {rate:>11,.0f} {fsyncs / elapsed:>9,.0f} {count / max(fsyncs, 1):>9.1f} "
              f"{bare_rate:>11,.0f} {rate / bare_rate:>6.0%}")


if __name__ == "__main__":
    main()

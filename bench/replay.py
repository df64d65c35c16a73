"""Replay speed: records/s and startup time for N records (default 1,000,000), and RSS after.

Writes a journal of telemetry and events from 1,000 devices through the real encoder, then times
`runtime.load_state` (checksums, JSON, seq checks, apply) on it. By default the devices are never
created, so the appliers drop the records at their first lookup and the figure is mostly the
journal's own cost; --registered creates them first, so every record is applied in full.
Usage: python bench/replay.py [--records 1000000] [--registered]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatewayd.journal.files import segment_path  # noqa: E402
from gatewayd.journal.record import Record, encode_line  # noqa: E402
from gatewayd.gateway import load_state  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_journal(directory: Path, count: int, devices: int = 1000, segment_bytes: int = 16 << 20,
                  registered: bool = False) -> int:
    directory.mkdir(parents=True)
    ts = "2026-11-22T03:04:05.123456Z"
    seq = 0
    size = 0
    handle = open(segment_path(directory, 1), "wb")
    try:
        while seq < count:
            seq += 1
            kind = seq % 50
            device = f"00000000-0000-4000-8000-{seq % devices:012d}"
            if registered and seq <= devices:
                record = Record(seq, ts, "device.created", {"device_id": device, "name": f"sensor {seq}"})
            elif kind == 0:
                record = Record(seq, ts, "device.event", {"device_id": device, "event": "door_open",
                                                          "payload": {"zone": 2}})
            else:
                record = Record(seq, ts, "device.telemetry", {"device_id": device, "payload": {
                    "temperature": 22.5 + kind / 10, "humidity": 48, "battery": 3.61}})
            line = encode_line(record)
            if size + len(line) > segment_bytes:
                handle.close()
                handle = open(segment_path(directory, seq), "wb")
                size = 0
            handle.write(line)
            size += len(line)
    finally:
        handle.close()
    return sum(p.stat().st_size for p in directory.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--registered", action="store_true", help="create the devices first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as tmp:
        directory = Path(tmp) / "journal"
        size = write_journal(directory, args.records, registered=args.registered)
        gc.collect()
        before = rss_mib()
        began = time.perf_counter()
        state, replayed = load_state(directory, cut_tail=False)
        elapsed = time.perf_counter() - began
        after = rss_mib()
    print(f"records replayed : {replayed:,} ({size / 1e6:,.0f} MB of journal)")
    print(f"startup (replay) : {elapsed:.2f} s")
    print(f"replay rate      : {replayed / elapsed:,.0f} records/s")
    print(f"RSS              : {after:,.0f} MiB after replay ({after - before:+,.0f} MiB)")


if __name__ == "__main__":
    main()

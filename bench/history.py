"""History store: flat memory with months of data, chart and CSV speed, catch-up rate.

    .venv/bin/python bench/history.py [--punches 1000000] [--values 10000000] [--keys 10] [--days 30]

Writes a journal (through the real encoder) holding `--punches` attendance punches (in batches of
100, as terminals send them) and `--values` telemetry values (`--keys` per message) from 100
devices plus one "chart" device that reports once a minute, all spread over the last `--days`
days. Then, in this process, it times the replay of that journal (`runtime.load_state`, the
reference) and the history store's catch-up over the same records, once in this process (a worker
thread's way) and once in a child process (how the daemon applies a long stretch at start or in
`gatewayd history rebuild`), wall time and CPU time per record. Then it starts `gatewayd serve` on an empty state directory and on
that journal (without a store: the first start replays the journal and builds the store), then
once more (a restart from the snapshot the first one wrote), and reports, from the outside:
- RSS of the daemons (target: within 10 MiB of the empty one: nothing of the history in memory);
- a chart query over `--days` days for the chart device (GET .../telemetry?key=k0, 1,000 points;
  target < 100 ms), beside a plain read of the same values (its rows, decoded) in this process;
- the attendance CSV of every punch over HTTP (rows/s), beside a plain read of the punches table.
Every step is bounded by the sizes given; scale them down on slow machines.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsload import ROOT, Server, rss_kib, temp_dir, write_config  # noqa: E402

from gatewayd.history import schema, telemetry_windows  # noqa: E402
from gatewayd.history.writer import HistoryWriter  # noqa: E402
from gatewayd.journal.files import segment_path  # noqa: E402
from gatewayd.journal.reader import JournalReader  # noqa: E402
from gatewayd.journal.record import Record, encode_line  # noqa: E402
from gatewayd.gateway import load_state  # noqa: E402

DEVICES = 100
TERMINALS = 20
PUNCHES_PER_RECORD = 100
CHART_DEVICE = "00000000-0000-4000-8000-chart0000000"
SEGMENT_BYTES = 16 << 20


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JournalFiles:
    def __init__(self, directory: Path):
        directory.mkdir(parents=True)
        self.directory = directory
        self.seq = 0
        self.size = 0
        self.handle = open(segment_path(directory, 1), "wb")

    def add(self, ts: str, type_: str, data: dict) -> None:
        self.seq += 1
        line = encode_line(Record(self.seq, ts, type_, data))
        if self.size + len(line) > SEGMENT_BYTES:
            self.handle.close()
            self.handle = open(segment_path(self.directory, self.seq), "wb")
            self.size = 0
        self.handle.write(line)
        self.size += len(line)

    def close(self) -> None:
        self.handle.close()


def write_journal(directory: Path, punches: int, values: int, keys: int, days: float) -> dict:
    end = datetime.now(timezone.utc).replace(microsecond=0)
    start = end - timedelta(days=days)
    journal = JournalFiles(directory)
    created = _iso(start)
    devices = [f"00000000-0000-4000-8000-{i:012d}" for i in range(DEVICES)] + [CHART_DEVICE]
    for device in devices:
        journal.add(created, "device.created", {"device_id": device, "name": device[-6:], "kind": "ws",
                                                "tags": [], "token_hash": "sha256:0"})
    for t in range(TERMINALS):
        journal.add(created, "terminal.added", {"sn": f"T{t:04d}", "name": f"door {t}", "tz": "UTC", "actor": "bench"})
    chart_messages = int(days * 1440)
    messages = max(values // keys, chart_messages)
    punch_records = punches // PUNCHES_PER_RECORD
    total = messages + punch_records
    step = (end - start) / total
    chart_every = messages / chart_messages
    punch_every = total / punch_records if punch_records else math.inf
    next_chart, next_punch = 0.0, punch_every / 2
    telemetry_done = punch_done = punched = 0
    moment = start
    for i in range(total):
        moment += step
        ts = _iso(moment)
        if i >= next_punch and punch_done < punch_records:
            next_punch += punch_every
            punch_done += 1
            terminal = f"T{punch_done % TERMINALS:04d}"
            items = []
            for j in range(PUNCHES_PER_RECORD):
                local = (moment - timedelta(seconds=PUNCHES_PER_RECORD - j)).strftime("%Y-%m-%d %H:%M:%S")
                punched += 1
                items.append({"enrollid": punched, "time": local, "mode": 1, "inout": j % 2, "event": 0,
                              "utc": local.replace(" ", "T") + "Z"})
            journal.add(ts, "attendance.punches", {"source": terminal, "connector": "http", "tz": "UTC",
                                                   "held": False, "punches": items, "cmd": "sendlog"})
            continue
        if telemetry_done >= next_chart:
            device, next_chart = CHART_DEVICE, next_chart + chart_every
        else:
            device = devices[telemetry_done % DEVICES]
        telemetry_done += 1
        payload = {f"k{k}": round(20 + 5 * math.sin(i / 500 + k), 2) for k in range(keys)}
        journal.add(ts, "device.telemetry", {"device_id": device, "name": device[-6:], "connector": "ws",
                                             "payload": payload})
    journal.close()
    return {"records": journal.seq, "messages": telemetry_done, "punches": punched, "start": start, "end": end,
            "bytes": sum(p.stat().st_size for p in directory.iterdir())}


def catch_up(state_dir: Path) -> tuple[int, float, float]:
    """The history store built from the journal in this process (a worker thread's way).
    Returns (records, seconds, CPU seconds)."""
    from gatewayd.history.catch_up import CATCH_UP_BATCH
    from gatewayd.gateway import comm_tables

    tables = comm_tables()
    writer = HistoryWriter(schema.store_path(state_dir), tables.communications, tables.comm_mappers.keys())
    began, cpu = time.perf_counter(), time.process_time()
    batch = []
    count = 0
    for record in JournalReader(state_dir / "journal").records():
        batch.append(record)
        if len(batch) >= CATCH_UP_BATCH:
            writer.apply(batch)
            count += len(batch)
            batch = []
    writer.apply(batch)
    count += len(batch)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    writer.close()
    return count, elapsed, cpu


def catch_up_in_child(state_dir: Path, until_seq: int) -> tuple[float, float]:
    """The same in a child process, as the daemon's first start does it. Returns (seconds, CPU seconds)."""
    import resource

    import trio

    from gatewayd.history import catch_up as catching_up
    from gatewayd.gateway import comm_tables

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    types = comm_tables().comm_mappers.keys()
    began, cpu = time.perf_counter(), children_cpu()
    done = trio.run(lambda: catching_up.run_child(schema.store_path(state_dir), state_dir / "journal", until_seq,
                                                 types))
    assert done, "the catch-up child failed"
    return time.perf_counter() - began, children_cpu() - cpu


def _drop_store(state_dir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        schema.store_path(state_dir).with_name(schema.FILENAME + suffix).unlink(missing_ok=True)


def api_key(state_dir: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "gatewayd", "apikey", "create", "bench", "--state-dir",
                          str(state_dir), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    import json

    return json.loads(out.stdout)["key"]


def settle_rss(pid: int) -> int:
    time.sleep(2.0)
    return rss_kib(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--punches", type=int, default=1_000_000)
    parser.add_argument("--values", type=int, default=10_000_000, help="telemetry values (keys x messages)")
    parser.add_argument("--keys", type=int, default=10, help="telemetry keys per message")
    parser.add_argument("--days", type=float, default=30, help="the time the data spans (and the chart's range)")
    parser.add_argument("--queries", type=int, default=7, help="chart queries timed (the median is shown)")
    args = parser.parse_args()
    import httpx

    with temp_dir("gatewayd-history-") as tmp:
        tmp = Path(tmp)
        config = write_config(tmp, {"log": {"level": "warning"}})
        state = tmp / "state"
        state.mkdir(mode=0o700)
        began = time.perf_counter()
        made = write_journal(state / "journal", args.punches, args.values, args.keys, args.days)
        print(f"journal: {made['records']:,} records ({made['messages']:,} telemetry messages x {args.keys} keys, "
              f"{made['punches']:,} punches) over {args.days:g} days, {made['bytes'] / 1e6:,.0f} MB, "
              f"written in {time.perf_counter() - began:.0f} s")

        began = time.perf_counter()
        _, replayed = load_state(state / "journal", cut_tail=False)
        replay_s = time.perf_counter() - began
        applied, catch_up_s, catch_up_cpu = catch_up(state)
        store_bytes = schema.store_path(state).stat().st_size
        _drop_store(state)
        child_s, child_cpu = catch_up_in_child(state, made["records"])
        _drop_store(state)  # the daemon's first start builds its own (catch-up included)
        print(f"{'replay (reference)':34} {replayed / replay_s:12,.0f} records/s  ({replay_s:.1f} s)")
        print(f"{'store catch-up in this process':34} {applied / catch_up_s:12,.0f} records/s  ({catch_up_s:.1f} s, "
              f"ratio to replay {replay_s / catch_up_s:.2f}; CPU {catch_up_cpu / applied * 1e6:.1f} us/record)")
        print(f"{'store catch-up in a child process':34} {applied / child_s:12,.0f} records/s  ({child_s:.1f} s, "
              f"ratio to replay {replay_s / child_s:.2f}; CPU {child_cpu / applied * 1e6:.1f} us/record; "
              "what a first start does)")
        print(f"{'history store size':34} {store_bytes / 1e6:12,.0f} MB  "
              f"({store_bytes / made['bytes']:.2f} of the journal's bytes)")

        empty_state = tmp / "empty"
        empty_state.mkdir(mode=0o700)
        empty = Server(empty_state, config).start()
        try:
            empty_kib = settle_rss(empty.pid)
        finally:
            empty.stop()

        began = time.perf_counter()
        server = Server(state, config).start(timeout=900)
        first_start_s = time.perf_counter() - began
        try:
            loaded_kib = settle_rss(server.pid)
            headers = {"Authorization": f"Bearer {api_key(state)}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", headers=headers, timeout=120) as client:
                params = {"key": "k0", "from": _iso(made["start"]), "to": _iso(made["end"]), "limit": 1000}
                url = f"/api/devices/{CHART_DEVICE}/telemetry"
                times, points = [], 0
                for _ in range(args.queries):
                    t0 = time.perf_counter()
                    response = client.get(url, params=params)
                    times.append(time.perf_counter() - t0)
                    assert response.status_code == 200, response.text
                    points = len(response.json()["points"])
                chart_ms = statistics.median(times) * 1000
                t0 = time.perf_counter()
                rows = 0
                with client.stream("GET", "/api/attendance", params={"format": "csv"}) as response:
                    for line in response.iter_lines():
                        rows += 1
                csv_s = time.perf_counter() - t0
                rows -= 1  # the header
            after_kib = rss_kib(server.pid)
        finally:
            server.stop()
        server = Server(state, config).start(timeout=600)  # again: from the snapshot the first run wrote
        try:
            restarted_kib = settle_rss(server.pid)
        finally:
            server.stop()

        conn = sqlite3.connect(schema.store_path(state))
        device = conn.execute("SELECT n FROM device_ids WHERE id = ?", (CHART_DEVICE,)).fetchone()[0]
        low, high = int(made["start"].timestamp() * 1_000_000), int(made["end"].timestamp() * 1_000_000)
        t0 = time.perf_counter()
        raw = [entry for _first, _last, blob in telemetry_windows.device_rows(conn, device, low, high)
               for entry in telemetry_windows.decode(blob) if low <= entry[0] <= high]
        raw_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        punch_rows = sum(1 for _ in conn.execute("SELECT * FROM punches ORDER BY id"))
        punch_read_s = time.perf_counter() - t0
        conn.close()

    mib = 1024.0
    print(f"{'RSS, empty daemon (MiB)':34} {empty_kib / mib:12.1f}")
    print(f"{'RSS, with this history (MiB)':34} {loaded_kib / mib:12.1f}  "
          f"({(loaded_kib - empty_kib) / mib:+.1f} MiB; target within 10; the first start: replayed the whole journal "
          f"and built the store, {first_start_s:.0f} s)")
    print(f"{'RSS after the queries (MiB)':34} {after_kib / mib:12.1f}  ({(after_kib - empty_kib) / mib:+.1f} MiB)")
    print(f"{'RSS, restarted (MiB)':34} {restarted_kib / mib:12.1f}  ({(restarted_kib - empty_kib) / mib:+.1f} MiB; "
          "from a snapshot, as after any restart but the first one after a long journal)")
    print(f"{f'chart query, {args.days:g} days (ms)':34} {chart_ms:12.1f}  ({points} points from "
          f"{len(raw):,} messages, median of {args.queries}; target < 100; reading its regrouped rows alone: "
          f"{raw_ms:.1f} ms)")
    print(f"{'attendance CSV over HTTP':34} {rows / csv_s:12,.0f} rows/s  ({rows:,} rows in {csv_s:.1f} s; "
          f"reading the table alone: {punch_rows / punch_read_s:,.0f} rows/s)")


if __name__ == "__main__":
    main()

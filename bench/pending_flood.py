"""Unknown terminals flooding /api/device-http with punches: what it costs in memory and on disk.

    .venv/bin/python bench/pending_flood.py [--terminals 10] [--batches 100] [--punches 1000] [--seconds 60]

gatewayd runs as a subprocess on 127.0.0.1 with no terminal known. `--terminals` unknown serial
numbers each send `--batches` sendlog batches of `--punches` distinct punches (all at once, one
connection per terminal), for at most `--seconds`. Reported: request bytes sent (the reference the
growth is compared with), the daemon's RSS and the journal's size before and after (and after a
restart), the bytes kept in state_dir/held, and how the batches were answered. Stops by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from footprint import settle_rss  # noqa: E402
from wsload import Server, temp_dir  # noqa: E402


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def batch(sn: str, index: int, size: int) -> bytes:
    start = datetime(2026, 1, 1) + timedelta(days=index)
    records = [{"enrollid": 1 + i % 500, "time": (start + timedelta(seconds=i * 7)).strftime("%Y-%m-%d %H:%M:%S"),
                "mode": 1, "inout": i % 2, "event": 0} for i in range(size)]
    return json.dumps({"cmd": "sendlog", "sn": sn, "count": size, "logindex": index, "record": records}).encode()


async def flood(port: int, args) -> dict:
    answers: dict[str, int] = {}
    sent = 0
    deadline = trio.current_time() + args.seconds

    async def terminal(n: int) -> None:
        nonlocal sent
        sn = f"FLOOD{n:04d}"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for b in range(args.batches):
                if trio.current_time() > deadline:
                    return
                body = batch(sn, b, args.punches)
                sent += len(body)
                response = await client.post("/api/device-http", content=body)
                reply = response.json()
                key = f"HTTP {response.status_code} result={reply.get('result')}"
                reason = reply.get("reason", "")
                key += " (kept)" if "records are kept until" in reason else " (not kept)" if "no more" in reason else ""
                answers[key] = answers.get(key, 0) + 1

    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for n in range(args.terminals):
            nursery.start_soon(terminal, n)
    return {"answers": answers, "sent": sent, "seconds": time.perf_counter() - began}


def main(args) -> None:
    with temp_dir("gatewayd-pending-flood-") as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        server = Server(state).start()
        try:
            rss_before = settle_rss(server.pid)
            journal_before = tree_bytes(state / "journal")
            result = trio.run(flood, server.port, args)
            rss_after = settle_rss(server.pid)
            journal_after = tree_bytes(state / "journal")
            held = tree_bytes(state / "held")
            server.stop()
            server = Server(state).start()
            rss_restarted = settle_rss(server.pid)
        finally:
            server.stop()
    mib = 1024 * 1024
    print(f"flood: {args.terminals} unknown terminals x {args.batches} batches x {args.punches} punches, "
          f"{result['sent'] / mib:.1f} MiB sent in {result['seconds']:.1f} s")
    for key, n in sorted(result["answers"].items()):
        print(f"  answered {key}: {n}")
    print(f"daemon RSS: {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after, "
          f"{rss_restarted / 1024:.1f} MiB after a restart")
    growth = journal_after - journal_before
    print(f"journal: +{growth / 1024:.1f} KiB ({growth / max(1, result['sent']):.4f} of the bytes sent); "
          f"kept in state_dir/held: {held / 1024:.1f} KiB ({held / max(1, result['sent']):.4f} of the bytes sent)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=10)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--punches", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    main(parser.parse_args())

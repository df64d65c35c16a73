"""Durable PUSH ATTLOG rows/s (batches of 100, keep-alive terminals) beside a raw endpoint that only parses.

gatewayd and a raw quart-trio app (the same hypercorn settings, the same PUSH codec parsing the same
bodies, answering `OK: <n>` without storing) run in their own processes on 127.0.0.1 and are loaded
alternately from separate processes. Every upload carries 100 new rows of its own terminal, so
gatewayd stores (and fsyncs) all of them before it answers. Afterwards the journal is read back to
check that every acknowledged row is there.
Usage: python bench/push_attlog.py [--seconds 5] [--clients 50] [--processes 2] [--rounds 3]
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from bench.sendlog_http import _read_response, alternate, bench_args, serve_raw  # noqa: E402

ROWS = 100
BASE_TIME = datetime(2026, 1, 1)
PATH = "/iclock/cdata"


def raw_server(port_file: str) -> None:
    from quart import Response, request
    from quart_trio import QuartTrio

    from gatewayd.config import Settings
    from gatewayd.connectors.terminals.push import codec

    app = QuartTrio("raw", static_folder=None)

    @app.post(PATH)
    async def cdata():
        codec.parse_query(request.args)
        upload = codec.parse_attlog(await request.get_data(cache=False))
        return Response(codec.uploaded(upload.accepted, upload), 200, content_type="text/plain; charset=utf-8")

    serve_raw(app, Settings(), port_file)


def _upload(sn: str, client: int, n: int) -> bytes:
    first = BASE_TIME + timedelta(seconds=n * ROWS)
    body = "".join(f"{client + 1}\t{first + timedelta(seconds=j):%Y-%m-%d %H:%M:%S}\t{j % 2}\t1\t0\t0\t0\t0\t0\t0\n"
                   for j in range(ROWS)).encode()
    return (f"POST {PATH}?SN={sn}&table=ATTLOG&Stamp={n} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def push_client(port: int, client: int, tag: str, start: float, stop: float, out: dict) -> None:
    sn = f"PB-{tag}-{client}"
    expected = f"OK: {ROWS}".encode()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    buffer = bytearray()
    n = 0
    async with stream:
        while (began := time.monotonic()) < stop:
            n += 1
            await stream.send_all(_upload(sn, client, n))
            reply = await _read_response(stream, buffer)
            if reply != expected:
                out["failed"] += 1
                out.setdefault("refusals", set()).add(reply.decode(errors="replace")[:200])
                continue
            out["acked"] += 1
            if began >= start:
                out["counted"] += 1
                out["latencies"].append(time.monotonic() - began)


def main() -> None:
    args = bench_args(__doc__, raw_server, rounds=3)
    if args is None:
        return
    print(f"PUSH ATTLOG uploads: {args.clients} keep-alive terminals in {args.processes} processes, "
          f"{ROWS} new rows per upload, {args.rounds} rounds of {args.seconds:g} s per server, "
          f"alternating; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    def report(n: int, raw: dict, gw: dict) -> None:
        print(f"  round {n + 1}: raw {raw['rps'] * ROWS:.0f} rows/s, gatewayd {gw['rps'] * ROWS:.0f} rows/s "
              f"({gw['rps'] / raw['rps']:.0%})")

    raw_results, gw_results, fsyncs, stored = alternate(__file__, args, push_client, report)
    for label, results in (("raw quart-trio (parse only)", raw_results), ("gatewayd (durable, dedup)", gw_results)):
        r = max(results, key=lambda r: r["rps"])
        print(f"  best {label:28s} {r['rps'] * ROWS:8.0f} rows/s ({r['rps']:6.0f} uploads/s)  p50 {r['p50']:6.2f} ms  "
              f"p99 {r['p99']:6.2f} ms  refused {r['failed']}")
    raw_cpu = min(r["cpu_per_request"] for r in raw_results)
    gw_cpu = min(r["cpu_per_request"] for r in gw_results)
    if raw_cpu and gw_cpu:
        print(f"  server CPU per upload (least of the rounds): raw {raw_cpu * 1e6:.0f} us, gatewayd {gw_cpu * 1e6:.0f} us "
              f"-> one free core would take {ROWS / raw_cpu:.0f} vs {ROWS / gw_cpu:.0f} rows/s ({raw_cpu / gw_cpu:.0%})")
    ratios = sorted(g["rps"] / r["rps"] for g, r in zip(gw_results, raw_results) if r["rps"])
    ratio = ratios[(len(ratios) - 1) // 2] if ratios else float("nan")  # the lower middle
    acked = sum(r["acked"] for r in gw_results)
    print(f"  fsyncs during the gatewayd runs: {fsyncs:.0f} "
          f"({acked / fsyncs if fsyncs else float('nan'):.1f} uploads per fsync)")
    print(f"  rows acknowledged {acked * ROWS}, found in the journal {stored}")
    print(f"  median ratio gatewayd / raw per round: {ratio:.0%}; target >= 50 %: {'met' if ratio >= 0.5 else 'NOT met'}")
    if stored < acked * ROWS:
        sys.exit("an acknowledged row is missing from the journal")


if __name__ == "__main__":
    main()

"""Durable terminal `sendlog` requests/s (10 punches each, 50 HTTP clients) beside a raw quart-trio endpoint.

Both servers run in their own process on 127.0.0.1 behind the same hypercorn settings; the raw one
parses the same JSON with the same codec and answers without storing. The load comes from separate
processes over keep-alive connections, every request carrying 10 new punches, so gatewayd stores
(and fsyncs) all of them before it answers. Afterwards the journal is read back to check that
every acknowledged punch is there.
Usage: python bench/sendlog_http.py [--seconds 5] [--clients 50] [--processes 2] [--rounds 2]
       [--compare-tree DIR]
--compare-tree DIR also runs the gatewayd of another checkout (with its own .venv), in the same
rounds: each round loads raw, this gatewayd and that one in turn, the servers not measured frozen
(SIGSTOP), and the CPU per request of the two daemons is compared per round (median of the ratios).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

PATH = "/api/device-http"
PUNCHES_PER_REQUEST = 10
WARMUP = 1.0
BASE_TIME = datetime(2026, 1, 1)


# -- the raw endpoint (its own process) ---------------------------------------------------------------
def raw_server(port_file: str) -> None:
    from quart import Response, request
    from quart_trio import QuartTrio

    from gatewayd.config import Settings
    from gatewayd.connectors.terminals import codec as tp
    from gatewayd.connectors.terminals import fields as tf

    settings = Settings()
    app = QuartTrio("raw", static_folder=None)

    @app.post(PATH)
    async def sendlog():
        req = tp.decode_request(tf.loads_lenient(await request.get_data(cache=False), settings.server.max_body_bytes))
        text = tp.encode_reply("sendlog", True, count=req.count, logindex=req.logindex,
                               cloudtime=tp.format_cloudtime(datetime.now(timezone.utc)))
        return Response(text, 200, content_type="application/json")

    serve_raw(app, settings, port_file)


def serve_raw(app, settings, port_file: str) -> None:
    """Serve a bare Quart app on a free 127.0.0.1 port with the daemon's hypercorn settings."""
    from functools import partial

    from hypercorn.config import Sockets
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app

    from gatewayd.daemon import _hypercorn_config

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    Path(port_file).write_text(str(sock.getsockname()[1]))
    trio.run(partial(worker_serve, wrap_app(app, 16 * 1024 * 1024, None), _hypercorn_config(settings),
                     sockets=Sockets([], [sock], [])))


# -- load generators (their own processes) ----------------------------------------------------------------
def _body(sn: str, client: int, n: int) -> bytes:
    first = BASE_TIME + timedelta(seconds=n * PUNCHES_PER_REQUEST)
    records = ",".join(
        '{"enrollid":%d,"time":"%s","mode":1,"inout":%d,"event":0}'
        % (client + 1, (first + timedelta(seconds=j)).strftime("%Y-%m-%d %H:%M:%S"), j % 2)
        for j in range(PUNCHES_PER_REQUEST))
    return ('{"cmd":"sendlog","sn":"%s","count":%d,"logindex":%d,"record":[%s]}'
            % (sn, PUNCHES_PER_REQUEST, n, records)).encode()


def _request(body: bytes) -> bytes:
    return (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


async def _read_response(stream, buffer: bytearray) -> bytes:
    while b"\r\n\r\n" not in buffer:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    while len(rest) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk
    buffer[:] = rest[length:]
    return rest[:length]


async def _client(port: int, client: int, tag: str, start: float, stop: float, out: dict) -> None:
    sn = f"BENCH-{tag}-{client}"
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    buffer = bytearray()
    n = 0
    async with stream:
        while True:
            began = time.monotonic()
            if began >= stop:
                break
            n += 1
            await stream.send_all(_request(_body(sn, client, n)))
            reply = await _read_response(stream, buffer)
            ended = time.monotonic()
            if b'"result":true' not in reply:
                out["failed"] += 1
                out.setdefault("refusals", set()).add(reply.decode(errors="replace")[:200])
                continue
            out["acked"] += 1
            if began >= start:
                out["counted"] += 1
                out["latencies"].append(ended - began)


def load_process(port: int, clients: list[int], tag: str, start: float, stop: float, results,
                 client_fn=_client) -> None:
    """`client_fn(port, client, tag, start, stop, out)` runs one keep-alive client."""
    out = {"acked": 0, "counted": 0, "failed": 0, "latencies": []}

    async def main():
        async with trio.open_nursery() as nursery:
            for client in clients:
                nursery.start_soon(client_fn, port, client, tag, start, stop, out)

    trio.run(main)
    out["cpu"] = time.process_time()
    results.put(out)


def run_load(port: int, tag: str, seconds: float, clients: int, processes: int, client_fn=_client) -> dict:
    start = time.monotonic() + 0.5 + WARMUP  # processes need a moment to start
    stop = start + seconds
    results = multiprocessing.Queue()
    groups = [list(range(i, clients, processes)) for i in range(processes)]
    workers = [multiprocessing.Process(target=load_process,
                                       args=(port, g, tag, start - WARMUP, stop, results, client_fn))
               for g in groups]
    for w in workers:
        w.start()
    outs = [results.get(timeout=seconds + 60) for _ in workers]
    for w in workers:
        w.join(10)
    latencies = sorted(x for o in outs for x in o["latencies"])
    refusals = set().union(*(o.get("refusals", set()) for o in outs))
    if refusals:
        print(f"  {tag}: refused: {'; '.join(sorted(refusals)[:3])}")
    counted = sum(o["counted"] for o in outs)

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {"rps": counted / seconds, "acked": sum(o["acked"] for o in outs),
            "load_cpu": sum(o["cpu"] for o in outs) / (seconds + WARMUP),
            "failed": sum(o["failed"] for o in outs), "p50": pct(0.50), "p99": pct(0.99)}


# -- orchestration -----------------------------------------------------------------------------------------
def _wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start: {proc.stdout.read().decode() if proc.stdout else ''}")
        time.sleep(0.05)


def _metric(port: int, name: str) -> float:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    match = re.search(r"^%s(?:\{[^}]*\})? ([0-9.e+]+)$" % re.escape(name), text, re.M)
    return float(match.group(1)) if match else float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux), 0 where /proc is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(proc: subprocess.Popen, port: int, tag: str, args, client_fn=_client) -> dict:
    cpu = _cpu_seconds(proc.pid)
    result = run_load(port, tag, args.seconds, args.clients, args.processes, client_fn)
    result["cpu_per_request"] = (_cpu_seconds(proc.pid) - cpu) / max(result["acked"] + result["failed"], 1)
    return result


def _stored_punches(state: Path) -> int:
    from gatewayd.journal.reader import JournalReader

    return sum(len(r.data["punches"]) for r in JournalReader(state / "journal").records()
               if r.type == "attendance.punches")


def _start_gatewayd(tree: Path, state: Path, config: Path) -> subprocess.Popen:
    """The gatewayd of a checkout (its own .venv; this interpreter for this checkout)."""
    python = sys.executable if tree == ROOT else str(tree / ".venv" / "bin" / "python")
    return subprocess.Popen([python, "-m", "gatewayd", "serve", "--config", str(config), "--state-dir", str(state),
                             "--host", "127.0.0.1", "--port", "0", "--udp-port", "0"],
                            cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _frozen_but(measured: subprocess.Popen, servers: list[subprocess.Popen], fn):
    """fn() with every server but `measured` stopped (SIGSTOP), so no background work of another
    server shares the cores during the round."""
    frozen = [proc for proc in servers if proc is not measured]
    for proc in frozen:
        os.kill(proc.pid, signal.SIGSTOP)
    try:
        return fn()
    finally:
        for proc in frozen:
            os.kill(proc.pid, signal.SIGCONT)


def alternate(script: str, args, client_fn, report, other_results: list | None = None
              ) -> tuple[list[dict], list[dict], float, int]:
    """Start the raw server (`script --raw-server PORT_FILE`) and gatewayd (auto-accepting terminals)
    in their own processes, load them in turn for `args.rounds` rounds, stop both. Returns the raw
    and gatewayd results, the fsyncs during gatewayd's rounds and the punches in its journal. With
    `args.compare_tree` the gatewayd of that checkout takes part in every round too (its results
    appended to `other_results`); the servers not measured are frozen meanwhile."""
    compare_tree = getattr(args, "compare_tree", None)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        tmp = Path(tmp)
        port_file = tmp / "raw.port"
        raw = subprocess.Popen([sys.executable, script, "--raw-server", str(port_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        config = tmp / "gatewayd.toml"
        config.write_text('[terminals]\nauto_accept = true\n[log]\nlevel = "warning"\n')
        state = tmp / "state"
        gateway = _start_gatewayd(ROOT, state, config)
        servers = [raw, gateway]
        other = None
        if compare_tree:
            other = _start_gatewayd(Path(compare_tree).resolve(), tmp / "other-state", config)
            servers.append(other)
        try:
            _wait_for_file(port_file, raw)
            _wait_for_file(state / "run.json", gateway)
            raw_port = int(port_file.read_text())
            gw_port = json.loads((state / "run.json").read_text())["http_port"]
            if other is not None:
                _wait_for_file(tmp / "other-state" / "run.json", other)
                other_port = json.loads((tmp / "other-state" / "run.json").read_text())["http_port"]
            raw_results, gw_results, fsyncs = [], [], 0.0
            for n in range(args.rounds):
                raw_results.append(_frozen_but(raw, servers, lambda: _measured(raw, raw_port, f"raw{n}", args,
                                                                               client_fn)))
                before = _metric(gw_port, "gatewayd_journal_fsyncs_total")
                gw_results.append(_frozen_but(gateway, servers, lambda: _measured(gateway, gw_port, f"gw{n}", args,
                                                                                  client_fn)))
                fsyncs += _metric(gw_port, "gatewayd_journal_fsyncs_total") - before
                if other is not None:
                    other_results.append(_frozen_but(other, servers, lambda: _measured(
                        other, other_port, f"other{n}", args, client_fn)))
                report(n, raw_results[-1], gw_results[-1])
        finally:
            for proc in servers:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        return raw_results, gw_results, fsyncs, _stored_punches(state)


def bench_args(doc: str, serve_raw_fn, rounds: int = 2) -> argparse.Namespace | None:
    """The flags shared by the HTTP terminal benches, bounded. When started as the raw server
    (`--raw-server PORT_FILE`), runs `serve_raw_fn(PORT_FILE)` and returns None."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=50, help="keep-alive clients (terminals) at once")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--rounds", type=int, default=rounds, help="raw / gatewayd alternations")
    parser.add_argument("--compare-tree", metavar="DIR",
                        help="also run the gatewayd of this checkout (its own .venv) in the same rounds")
    parser.add_argument("--raw-server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        serve_raw_fn(args.raw_server)
        return None
    if not 1 <= args.clients <= 500 or not 0.5 <= args.seconds <= 60 or not 1 <= args.rounds <= 10:
        parser.error("keep it bounded: 1-500 clients, 0.5-60 seconds, 1-10 rounds")
    return args


def main() -> None:
    args = bench_args(__doc__, raw_server)
    if args is None:
        return

    print(f"sendlog over HTTP: {args.clients} keep-alive clients in {args.processes} processes, "
          f"{PUNCHES_PER_REQUEST} new punches per request, {args.rounds} rounds of {args.seconds:g} s "
          f"per server (after {WARMUP:g} s warm-up), alternating; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")

    def report(n: int, raw: dict, gw: dict) -> None:
        print(f"  round {n + 1}: raw {raw['rps']:.0f} req/s, gatewayd {gw['rps']:.0f} req/s "
              f"({gw['rps'] / raw['rps']:.0%})")

    other_results: list[dict] = []
    raw_results, gw_results, fsyncs, stored = alternate(__file__, args, _client, report, other_results)

    def best(results):
        return max(results, key=lambda r: r["rps"])

    raw_best, gw_best = best(raw_results), best(gw_results)
    for label, r in (("raw quart-trio (parse, no store)", raw_best), ("gatewayd (durable, dedup)", gw_best)):
        print(f"  best {label:34s} {r['rps']:7.0f} req/s {r['rps'] * PUNCHES_PER_REQUEST:8.0f} punches/s  "
              f"p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  refused {r['failed']}  "
              f"(load generators used {r['load_cpu']:.2f} CPUs)")
    raw_cpu = min(r["cpu_per_request"] for r in raw_results)
    gw_cpu = min(r["cpu_per_request"] for r in gw_results)
    if raw_cpu and gw_cpu:
        print(f"  server CPU per request (least of the rounds): raw {raw_cpu * 1e6:.0f} us, gatewayd "
              f"{gw_cpu * 1e6:.0f} us -> one free core would serve {1 / raw_cpu:.0f} vs {1 / gw_cpu:.0f} req/s "
              f"({raw_cpu / gw_cpu:.0%})")
    ratios = sorted(g["rps"] / r["rps"] for g, r in zip(gw_results, raw_results) if r["rps"])
    ratio = ratios[(len(ratios) - 1) // 2] if ratios else float("nan")  # the lower middle
    acked = sum(r["acked"] for r in gw_results)
    print(f"  fsyncs during the gatewayd runs: {fsyncs:.0f} ({acked / fsyncs if fsyncs else float('nan'):.1f} "
          f"requests per fsync)")
    print(f"  punches acknowledged {acked * PUNCHES_PER_REQUEST}, found in the journal {stored}")
    print(f"  median ratio gatewayd / raw per round: {ratio:.0%}; targets >= 2000 req/s and >= 50 %: "
          f"{'met' if gw_best['rps'] >= 2000 and ratio >= 0.5 else 'NOT met'}")
    if other_results:
        ours = [r["cpu_per_request"] * 1e6 for r in gw_results]
        theirs = [r["cpu_per_request"] * 1e6 for r in other_results]
        ratios = [o / t for o, t in zip(ours, theirs)]
        print(f"  server CPU per request, this gatewayd vs {args.compare_tree}, per round: "
              + ", ".join(f"{o:.0f}/{t:.0f}" for o, t in zip(ours, theirs))
              + f" us; medians {median(ours):.0f} vs {median(theirs):.0f} us, median ratio {median(ratios):.2f}")
    if stored < acked * PUNCHES_PER_REQUEST:
        sys.exit("an acknowledged punch is missing from the journal")


if __name__ == "__main__":
    main()

"""Concurrent wrong logins: password hashes computed and the daemon's memory.

    .venv/bin/python bench/login_flood.py [--attempts 500] [--addresses 1] [--seconds 60]

gatewayd runs as a subprocess on 127.0.0.1. `--attempts` logins with a wrong password for `admin`
are sent at once (each with a valid login form token), spread over `--addresses` source addresses
127.0.0.2 ..., and the run stops after `--seconds` at most. Reported: how they were answered, the
password hashes the daemon computed (gatewayd_password_checks_total) against the attempts (the
reference), and RSS before, after and at the peak seen. Stops by itself.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wsload import Server, raise_nofile, rss_kib, temp_dir  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def flood(port: int, args) -> dict[int, int]:
    answers: dict[int, int] = {}
    clients = []
    for n in range(args.addresses):
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + n % 250}")
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", transport=transport, timeout=args.seconds,
                                 limits=httpx.Limits(max_connections=None))
        token = CSRF.search((await http.get("/login")).text).group(1)
        clients.append((http, token))

    async def one(i: int) -> None:
        http, token = clients[i % len(clients)]
        try:
            response = await http.post("/login", data={"username": "admin", "password": f"wrong-{i}",
                                                       "csrf_token": token})
            answers[response.status_code] = answers.get(response.status_code, 0) + 1
        except httpx.HTTPError:
            answers[0] = answers.get(0, 0) + 1

    with trio.move_on_after(args.seconds):
        async with trio.open_nursery() as nursery:
            for i in range(args.attempts):
                nursery.start_soon(one, i)
    for http, _ in clients:
        await http.aclose()
    return answers


def main(args) -> None:
    raise_nofile(args.attempts * 2 + 1000)
    with temp_dir("gatewayd-login-flood-") as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        server = Server(state).start()
        try:
            time.sleep(1)
            rss_before = rss_kib(server.pid)
            peak = [rss_before]
            done = threading.Event()

            def watch() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_kib(server.pid))
                    time.sleep(0.05)

            watcher = threading.Thread(target=watch)
            watcher.start()
            began = time.perf_counter()
            try:
                answers = trio.run(flood, server.port, args)
            finally:
                done.set()
                watcher.join()
            took = time.perf_counter() - began
            time.sleep(1)
            rss_after = rss_kib(server.pid)
            hashes = metric(server.port, "gatewayd_password_checks_total")
        finally:
            server.stop()
    print(f"wrong logins: {args.attempts} at once from {args.addresses} address(es), answered in {took:.1f} s: "
          + ", ".join(f"HTTP {k or 'error'} x {v}" for k, v in sorted(answers.items())))
    print(f"password hashes computed: {hashes:g} ({hashes / args.attempts:.3f} per attempt)")
    print(f"daemon RSS: {rss_before / 1024:.1f} MiB before, peak {peak[0] / 1024:.1f} MiB, "
          f"{rss_after / 1024:.1f} MiB after")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=500)
    parser.add_argument("--addresses", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    main(parser.parse_args())

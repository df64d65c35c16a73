"""Dashboard in Chromium: the devices page's render time and its live-update latency, before/after.

For each tree (a reference checkout given with --base, then this one), in one run: gatewayd from
that tree (its own .venv when it has one) as a subprocess on 127.0.0.1 with a fresh state
directory and --devices devices; Debian's Chromium driven by Playwright, logged in.
  - render: --loads loads of /devices; from the Navigation Timing entry: time to first byte
    (the server), DOMContentLoaded and load (the browser built the table and ran the scripts);
  - live: with the page open, --driving of the devices send telemetry (acknowledged, so durable)
    at --rate msgs/s in all for --seconds. The page records when each row's "last seen" changes
    (a MutationObserver, the browser's clock); each change is matched with the message it shows
    (the latest one its device sent before the server stamped the record; same host, same wall
    clock), giving the device -> visible row latency (p50 / p99); plus how much of the run the
    page's main thread was blocked (long tasks) and the p99 gap between frames.
The figures of both trees are printed side by side with the ratios after/before.

Usage: python bench/dashboard_live.py [--base /path/to/reference/checkout] [--devices 1000]
                                      [--rate 100] [--seconds 8] [--driving 50] [--loads 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import httpx  # noqa: E402
import trio  # noqa: E402
from trio_websocket import open_websocket_url  # noqa: E402

PASSWORD = "bench password 1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
CREATE_CLIENTS = 8
DRAIN_SECONDS = 2.0

# Installed in the page once it has loaded: records [device id, datetime shown, Date.now()] for
# every change of a row's last-seen time (the old page replaces the element, the new one edits it),
# the frame gaps and the long tasks.
OBSERVE_JS = """() => {
  const seen = []; const frames = []; let blocked = 0; let last = performance.now();
  const body = document.querySelector('#devices tbody');
  const note = (el) => { const row = el.closest('tr');
    if (row) seen.push([row.dataset.device, el.getAttribute('datetime'), Date.now()]); };
  new MutationObserver((changes) => { for (const c of changes) {
    if (c.type === 'attributes' && c.target.tagName === 'TIME' && c.attributeName === 'datetime') note(c.target);
    else for (const n of c.addedNodes) if (n.nodeType === 1 && n.tagName === 'TIME' && n.dataset.role === 'last-seen') note(n);
  } }).observe(body, {subtree: true, childList: true, attributes: true, attributeFilter: ['datetime']});
  try { new PerformanceObserver((list) => { for (const e of list.getEntries()) blocked += e.duration; })
    .observe({type: 'longtask'}); } catch (e) { /* not supported: reported as 0 */ }
  const tick = (now) => { frames.push(now - last); last = now; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  window.__bench = () => ({seen, frames, blocked});
}"""

NAV_JS = """() => { const n = performance.getEntriesByType('navigation')[0];
  return {ttfb: n.responseStart - n.startTime, dcl: n.domContentLoadedEventEnd - n.startTime,
          load: n.loadEventEnd - n.startTime, rows: document.querySelectorAll('#devices tbody tr').length}; }"""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return percentile(values, 0.5)


# -- the daemon ---------------------------------------------------------------------------------------
def python_of(tree: Path) -> str:
    venv = tree / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def start_gatewayd(tree: Path, state: Path) -> tuple[subprocess.Popen, str]:
    base = [python_of(tree), "-m", "gatewayd"]
    subprocess.run([*base, "admin", "set-password", "--password-stdin", "--state-dir", str(state)],
                   input=PASSWORD + "\n", text=True, cwd=tree, check=True, capture_output=True)
    runfile = state / "run.json"
    proc = subprocess.Popen([*base, "serve", "--state-dir", str(state), "--host", "127.0.0.1", "--port", "0",
                             "--udp-port", "0"], cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not runfile.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"gatewayd from {tree} did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{json.loads(runfile.read_text())['http_port']}"


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def prepare(base: str, devices: int, driving: int) -> tuple[dict[str, str], list[dict]]:
    """Log in, create the devices; (session cookies, the devices that will send, with tokens)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        form = await http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        await http.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
        page = await http.get("/devices")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        created: list[dict] = []

        async def creator(start: int):
            for i in range(start, devices, CREATE_CLIENTS):
                response = await http.post("/api/devices", json={"name": f"device-{i:04d}", "tags": ["bench"]},
                                           headers={"X-CSRF-Token": csrf})
                assert response.status_code in (200, 201), response.text
                created.append(response.json())

        async with trio.open_nursery() as nursery:
            for start in range(CREATE_CLIENTS):
                nursery.start_soon(creator, start)
        return dict(http.cookies), created[:driving]


async def drive(ws_base: str, senders: list[dict], rate: float, seconds: float, sent: dict[str, list[float]],
                steps: dict[str, threading.Event]) -> None:
    """Connect every sender, say so (steps["connected"]), wait for steps["go"], then each sends at
    rate/len(senders) msgs/s, spread evenly (wall-clock send times per device in `sent`); say
    steps["sent"] and keep the connections open until steps["done"] (closing them changes rows)."""
    share = rate / len(senders)

    async def device(index: int, entry: dict, task_status=trio.TASK_STATUS_IGNORED):
        times = sent.setdefault(entry["id"], [])
        async with open_websocket_url(ws_base + "/ws") as ws:
            await ws.send_message(json.dumps({"type": "register", "device_id": entry["id"], "token": entry["token"]}))
            await ws.get_message()
            task_status.started()
            await started.wait()
            await send_all(ws, index, times)
            finished.release()
            await stopping.wait()

    async def send_all(ws, index: int, times: list[float]):
        async def drain():  # acks: read so they never back up
            while True:
                await ws.get_message()

        async with trio.open_nursery() as inner:
            inner.start_soon(drain)
            interval = 1.0 / share
            next_at = trio.current_time() + index * interval / len(senders)
            end = trio.current_time() + seconds
            await trio.sleep_until(next_at)
            n = 0
            while trio.current_time() < end:
                times.append(time.time())
                await ws.send_message(json.dumps({"type": "telemetry", "id": n, "payload": {"n": n}}))
                n += 1
                next_at += interval
                await trio.sleep_until(next_at)
            inner.cancel_scope.cancel()

    started, stopping, finished = trio.Event(), trio.Event(), trio.Semaphore(0)
    async with trio.open_nursery() as nursery:
        for index, entry in enumerate(senders):
            await nursery.start(device, index, entry)
        steps["connected"].set()
        await trio.to_thread.run_sync(steps["go"].wait)
        started.set()
        for _ in senders:
            await finished.acquire()
        steps["sent"].set()
        await trio.to_thread.run_sync(steps["done"].wait)
        stopping.set()


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def match(sent: dict[str, list[float]], seen: list[list]) -> list[float]:
    """Latency (ms) of every row change: seen time minus the send time of the message it shows."""
    latencies = []
    for device_id, shown, at_ms in seen:
        times = sent.get(device_id)
        if not times or not shown:
            continue
        index = bisect_right(times, _epoch(shown)) - 1  # the server stamps a record after its message left
        if index >= 0:
            latencies.append(at_ms - times[index] * 1000)
    return latencies


def wait_step(page, step: threading.Event, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not step.is_set():
        if time.monotonic() > deadline:
            raise SystemExit("the device senders did not get there in time")
        page.wait_for_timeout(100)  # keeps Playwright's connection served meanwhile


# -- one tree -----------------------------------------------------------------------------------------
def measure(browser, tree: Path, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="gwbench-dash-") as tmp:
        proc, base = start_gatewayd(tree, Path(tmp) / "state")
        try:
            began = time.monotonic()
            cookies, senders = trio.run(prepare, base, args.devices, args.driving)
            setup = time.monotonic() - began
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            try:
                context.add_cookies([{"name": k, "value": v, "url": base} for k, v in cookies.items()])
                page = context.new_page()
                loads = []
                for _ in range(args.loads):
                    page.goto(base + "/devices", wait_until="load")
                    loads.append(page.evaluate(NAV_JS))
                assert loads[-1]["rows"] == args.devices, loads[-1]
                page.wait_for_function("() => (document.getElementById('live-state') || {}).textContent === '· live'",
                                       timeout=15_000)
                sent: dict[str, list[float]] = {}
                failure: list[BaseException] = []
                steps = {name: threading.Event() for name in ("connected", "go", "sent", "done")}

                def run_drive():
                    try:
                        trio.run(drive, base.replace("http:", "ws:"), senders, args.rate, args.seconds, sent, steps)
                    except BaseException as exc:  # reported below
                        failure.append(exc)
                        for step in steps.values():
                            step.set()

                driver = threading.Thread(target=run_drive, name="devices")
                driver.start()
                try:
                    wait_step(page, steps["connected"], 60)
                    page.wait_for_timeout(1000)  # the connections' own row changes are shown before we watch
                    page.evaluate(OBSERVE_JS)
                    steps["go"].set()
                    wait_step(page, steps["sent"], args.seconds + 30)
                    page.wait_for_timeout(DRAIN_SECONDS * 1000)
                    observed = page.evaluate("() => window.__bench()")
                finally:
                    steps["go"].set()
                    steps["done"].set()
                    driver.join(30)
                if failure:
                    raise failure[0]
            finally:
                context.close()
        finally:
            stop(proc)
    messages = sum(len(t) for t in sent.values())
    latencies = match(sent, observed["seen"])
    frames = observed["frames"][1:]
    live_ms = (args.seconds + DRAIN_SECONDS) * 1000
    return {"setup_s": setup, "ttfb": median([x["ttfb"] for x in loads]), "dcl": median([x["dcl"] for x in loads]),
            "load": median([x["load"] for x in loads]), "messages": messages, "changes": len(latencies),
            "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "blocked": observed["blocked"] / live_ms, "frame_p99": percentile(frames, 0.99)}


def report(args, results: dict[str, dict]) -> None:
    before, after = results.get("before"), results["after"]
    print(f"devices page in Chromium: {args.devices} devices; live: {args.rate:g} msgs/s from {args.driving} "
          f"devices for {args.seconds:g} s; render: median of {args.loads} loads")
    rows = [("render: time to first byte", "ttfb", "ms"), ("render: DOMContentLoaded", "dcl", "ms"),
            ("render: load", "load", "ms"), ("live: device -> row p50", "p50", "ms"),
            ("live: device -> row p99", "p99", "ms"), ("live: main thread blocked", "blocked", "%"),
            ("live: frame gap p99", "frame_p99", "ms")]
    print(f"  {'':30s} {'before':>10s} {'after':>10s}   after/before")
    for label, key, unit in rows:
        scale = 100 if unit == "%" else 1
        b = f"{before[key] * scale:8.1f}{unit:2s}" if before else f"{'-':>10s}"
        a = after[key] * scale
        ratio = f"{a / (before[key] * scale):6.2f}" if before and before[key] else "     -"
        print(f"  {label:30s} {b} {a:8.1f}{unit:2s}   {ratio}")
    for name, r in results.items():
        print(f"  {name}: {r['messages']} messages sent, {r['changes']} row changes seen "
              f"(several messages of one device within a frame show once), setup {r['setup_s']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a reference checkout (with its own .venv) measured first as 'before'")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--driving", type=int, default=50)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    args.devices = min(max(args.devices, 1), 5000)
    args.driving = min(max(args.driving, 1), min(args.devices, 100))
    args.rate = min(max(args.rate, 1.0), 25.0 * args.driving)  # under devices.rate_per_second per device
    args.seconds = min(max(args.seconds, 1.0), 60.0)
    args.loads = min(max(args.loads, 1), 20)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    from playwright.sync_api import sync_playwright

    trees = ([("before", Path(args.base).resolve())] if args.base else []) + [("after", ROOT)]
    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            for name, tree in trees:
                results[name] = measure(browser, tree, args)
        finally:
            browser.close()
    report(args, results)


if __name__ == "__main__":
    main()

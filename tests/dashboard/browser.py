"""Debian's Chromium, driven by Playwright's sync API from one dedicated thread.

The daemon under test runs in the test's trio loop, so the browser cannot block that loop: every
Playwright call is handed to the browser thread, and the test awaits its result (the loop keeps
serving the browser meanwhile). Playwright objects never leave that thread's calls.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

import trio

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; it is in the test extra)"
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"Chromium is missing at {CHROMIUM} (apt-get install -y chromium)"
    return None


class BrowserThread:
    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._ready: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, name="chromium", daemon=True)
        self._thread.start()
        self.browser = self._ready.result(timeout=60)

    def _main(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            playwright = sync_playwright().start()
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        except BaseException as exc:  # reported to the test that started us
            self._ready.set_exception(exc)
            return
        self._ready.set_result(browser)
        while True:
            job = self._jobs.get()
            if job is None:
                break
            fn, args, kwargs, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)
        browser.close()
        playwright.stop()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((fn, args, kwargs, future))
        return future

    def call_blocking(self, fn: Callable[..., Any], *args: Any, timeout: float = 60, **kwargs: Any) -> Any:
        return self.submit(fn, *args, **kwargs).result(timeout=timeout)

    async def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30, **kwargs: Any) -> Any:
        """Run fn(*args) in the browser thread; the trio loop keeps running while it works."""
        future = self.submit(fn, *args, **kwargs)
        with trio.fail_after(timeout):
            return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)


class Page:
    """A Playwright page seen from trio: `await page.do(lambda p: p.goto(url))`."""

    def __init__(self, browser: BrowserThread, page: Any):
        self.browser = browser
        self.page = page

    async def do(self, fn: Callable[[Any], Any], timeout: float = 30) -> Any:
        return await self.browser.call(fn, self.page, timeout=timeout)

    async def screenshot(self, name: str, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.do(lambda p: p.screenshot(path=str(path), full_page=full_page))
        return path

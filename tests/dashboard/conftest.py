"""Fixtures for the browser tests: one Chromium for the session, a fresh context per test."""

from __future__ import annotations

import pytest

from .browser import BrowserThread, Page, missing


@pytest.fixture(scope="session")
def browser_thread():
    reason = missing()
    if reason is not None:
        pytest.skip(f"browser tests skipped: {reason}")
    browser = BrowserThread()
    yield browser
    browser.close()


async def _open(browser: BrowserThread, **context_args) -> tuple[Page, object]:
    def make():
        context = browser.browser.new_context(**context_args)
        context.set_default_timeout(10_000)
        return context, context.new_page()

    context, page = await browser.call(make)
    return Page(browser, page), context


# The page fixtures depend on `daemon` so that they close first: a browser's open keep-alive
# connections would otherwise hold the daemon's stop for its whole graceful timeout.
@pytest.fixture
async def page(browser_thread, daemon):
    """A desktop-sized page in its own browser context (its own cookies)."""
    opened, context = await _open(browser_thread, viewport={"width": 1280, "height": 860}, accept_downloads=True)
    yield opened
    await browser_thread.call(context.close)


@pytest.fixture
async def new_page(browser_thread, daemon):
    """Opens more pages: `await new_page(width, height)` gives a page in a context of its own."""
    contexts = []

    async def open_page(width: int = 1280, height: int = 860, **extra) -> Page:
        opened, context = await _open(browser_thread, viewport={"width": width, "height": height}, **extra)
        contexts.append(context)
        return opened

    yield open_page
    for context in contexts:
        await browser_thread.call(context.close)

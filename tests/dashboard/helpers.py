"""Helpers for the dashboard tests: a logged-in HTTP client, CSRF tokens read from pages."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager

import httpx

from gatewayd import ops

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def set_password(daemon, password: str = PASSWORD) -> None:
    await ops.call(daemon.core, "admin.set_password", {"password": password})


def client(daemon, **kwargs) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=daemon.base_url, follow_redirects=False, timeout=10, **kwargs)


async def login(http: httpx.AsyncClient, password: str = PASSWORD, user: str = "admin") -> httpx.Response:
    form = await http.get("/login")
    return await http.post("/login", data={"username": user, "password": password, "csrf_token": csrf_of(form.text),
                                           "next": "/devices"})


@asynccontextmanager
async def logged_in(daemon, password: str = PASSWORD, *, set_it: bool = True):
    """A client with a dashboard session, and the session's CSRF token. Setting the password
    (set_it) ends every earlier session."""
    if set_it:
        await set_password(daemon, password)
    async with client(daemon) as http:
        response = await login(http, password)
        assert response.status_code == 303, response.text
        page = await http.get("/devices")
        assert page.status_code == 200, page.text
        yield http, csrf_of(page.text)

"""Every route the app serves refuses an unauthenticated request, except the documented public list
(docs/security.md, "Public routes"). Routes are read from the live app's url_map, so a route added
anywhere is checked without touching this file."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, HandshakeError, open_websocket_url

from gatewayd.web.app import create_app
from tests.reliability.figures import count

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
SKIPPED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def daemon_sections():
    # /metrics is open to localhost by default (a documented convenience); here it must ask too.
    return {"security": {"metrics_public_on_localhost": False}}


def documented_public_routes() -> set[tuple[str, str]]:
    """("http"|"ws", rule) pairs from the table under "## Public routes" in docs/security.md."""
    text = DOC.read_text()
    section = text.split("## Public routes", 1)[1].split("\n## ", 1)[0]
    found = set()
    for line in section.splitlines():
        match = re.match(r"\|\s*(HTTP|WebSocket)\s*\|\s*`([^`]+)`", line)
        if match:
            found.add(("ws" if match.group(1) == "WebSocket" else "http", match.group(2)))
    return found


def is_public(kind: str, rule: str, core, public: set[tuple[str, str]]) -> bool:
    if (kind, rule) in public:
        return True
    # Terminals connect on the configured bare paths (terminals.ws_paths); they are device endpoints.
    return kind == "ws" and ("ws", "terminals.ws_paths") in public and rule in core.settings.terminals.ws_paths


def concrete(rule) -> str:
    """A request path for a rule: each variable gets a harmless sample value."""
    def sample(match: re.Match) -> str:
        converter = match.group(1) or ""
        options = re.match(r"any\(([^)]*)\)", converter)
        return options.group(1).split(",")[0].strip().strip("'\"") if options else "x1"
    return re.sub(r"<(?:([^:>]+(?:\([^)]*\))?):)?[^>]+>", sample, rule.rule)


def routes(core):
    app = create_app(core)
    for rule in app.url_map.iter_rules():
        kind = "ws" if getattr(rule, "websocket", False) else "http"
        methods = sorted((rule.methods or set()) - SKIPPED_METHODS) if kind == "http" else ["GET"]
        for method in methods:
            yield kind, rule, method


def refused_http(response: httpx.Response) -> bool:
    if response.status_code in (401, 403, 429):
        return True
    location = response.headers.get("location", "")
    return response.is_redirect and location.split("?")[0].endswith("/login")


async def ws_refused(url: str, headers=None) -> tuple[bool, str]:
    """True when the handshake is refused, or the socket is closed before any frame arrives."""
    try:
        with trio.fail_after(5):
            async with open_websocket_url(url, extra_headers=headers or []) as ws:
                try:
                    message = await ws.get_message()
                    return False, f"accepted and sent {message[:80]!r}"
                except Exception as exc:  # noqa: BLE001 - closed: refused after the handshake
                    return True, f"closed: {exc!r}"
    except ConnectionRejected as exc:
        return exc.status_code in (401, 403, 429), f"rejected with {exc.status_code}"
    except HandshakeError as exc:
        return True, f"handshake failed: {exc!r}"


async def test_every_route_refuses_unauthenticated_requests_except_the_public_list(daemon):
    public = documented_public_routes()
    assert ("http", "/healthz") in public and ("ws", "/ws") in public, "the public list in docs/security.md is gone"
    checked, problems, served_public = 0, [], set()
    bad_key = {"Authorization": "Bearer gwk_deadbeef_not-a-real-key"}
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10, follow_redirects=False) as client:
        for kind, rule, method in routes(daemon.core):
            path = concrete(rule)
            if is_public(kind, rule.rule, daemon.core, public):
                served_public.add((kind, rule.rule))
                continue
            checked += 1
            if kind == "ws":
                for headers in (None, [(b"Authorization", bad_key["Authorization"].encode())]):
                    ok, how = await ws_refused(daemon.ws_url + path, headers)
                    if not ok:
                        problems.append(f"WebSocket {rule.rule} ({path}) without valid credentials: {how}")
                continue
            for headers in ({}, bad_key):
                response = await client.request(method, path, headers={**headers, "Origin": daemon.base_url},
                                                content=b"{}")
                if not refused_http(response):
                    problems.append(f"{method} {rule.rule} ({path}) {'with a bad key' if headers else 'anonymous'}: "
                                    f"{response.status_code} {response.text[:120]!r}")
            # Once refused, the same source would be rate-limited after a few bad keys: keep the
            # check about authentication, not about the limiter.
            daemon.core.access.limiter.succeeded("apikey:127.0.0.1")
    count("routes checked for authentication", checked)
    count("public routes served", len(served_public))
    assert checked >= 10, "the route walk found almost nothing: is the app built differently now?"
    assert not problems, "\n".join(problems)
    stale = {entry for entry in public if entry[1] != "terminals.ws_paths"} - served_public
    assert not stale, f"docs/security.md lists public routes the app does not serve: {stale}"


async def test_the_walk_would_notice_an_open_route(daemon):
    """The check above can fail: a route with no protection is reported."""
    from quart import Blueprint

    from gatewayd.web import app as web

    leak = Blueprint("leak", __name__)

    @leak.get("/api/leak")
    async def leaked():
        return {"secret": True}

    original = web.blueprints
    web.blueprints = lambda connectors: [*original(connectors), leak]
    try:
        rules = [(kind, rule.rule) for kind, rule, _ in routes(daemon.core)]
    finally:
        web.blueprints = original
    assert ("http", "/api/leak") in rules
    assert not is_public("http", "/api/leak", daemon.core, documented_public_routes())


async def test_operator_surfaces_accept_a_valid_key(daemon):
    """Sanity: the refusals above are about credentials, not broken routes."""
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth, timeout=10) as client:
        for path in ("/api/devices", "/api/events", "/metrics"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
    async with open_websocket_url(daemon.ws_url + "/monitor/actions",
                                  extra_headers=[(b"Authorization", f"Bearer {daemon.api_key}".encode())]):
        pass

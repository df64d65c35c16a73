"""Hot HTTP routes answered as plain ASGI in front of the web framework.

A route here takes the request body and the client's address and returns the status and a JSON
text; the web framework's routing, request and response objects and its hooks are skipped
(most of what one small request cost). The framework keeps the same path registered, so the
route map, other methods (405) and the route audit are unchanged. What the framework did for these
requests is done here: the body limit (`server.max_body_bytes`), its time limit for the body,
`gatewayd_http_requests_total`, and a logged 500 for an unexpected error.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

import trio

log = logging.getLogger("gatewayd.web")

Asgi = Callable[[dict, Callable, Callable], Awaitable[None]]
# handle(core, body, client address) -> (HTTP status, JSON text). A body over the limit is handed
# over cut at limit + 1 bytes: the handler refuses it (413) in its own words.
Handler = Callable[[Any, bytes, str], Awaitable[tuple[int, str]]]



@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    handle: Handler


def _json_headers(length: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]


async def _read_body(receive, limit: int) -> bytes | None:
    """The body, cut at `limit` + 1 bytes (the rest is not read); None when the client left."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(parts)[:limit + 1]
        if not message.get("more_body", False):
            return b"".join(parts)


def http_front(app: Asgi, core, routes: Iterable[HttpRoute], body_timeout: Callable[[], float]) -> Asgi:
    """`app` with `routes` (method, exact path) answered in front of it; `body_timeout()`: the
    seconds a whole body may take (the framework's own setting, read per request)."""
    table = {(route.method, route.path): route for route in routes}
    if not table:
        return app
    limit = core.settings.server.max_body_bytes
    metrics = core.metrics

    async def answer(send, status: int, text: str) -> None:
        body = text.encode()
        await send({"type": "http.response.start", "status": status, "headers": _json_headers(len(body))})
        await send({"type": "http.response.body", "body": body})
        metrics.inc("gatewayd_http_requests_total", status=str(status))

    def front(scope: dict[str, Any], receive, send) -> Awaitable[None]:
        # Not a coroutine function: what is not ours goes on as the application's own awaitable, so
        # a long-lived connection (a WebSocket) keeps no frame of this front waiting for its life.
        route = table.get((scope.get("method"), scope.get("path"))) if scope["type"] == "http" else None
        if route is None:
            return app(scope, receive, send)
        return serve(route, scope, receive, send)

    async def serve(route: HttpRoute, scope: dict[str, Any], receive, send) -> None:
        body = None
        with trio.move_on_after(body_timeout()) as waited:
            body = await _read_body(receive, limit)
        if waited.cancelled_caught:
            await answer(send, 408, json.dumps({"code": "http_error", "message": "the request body took too long"}))
            return
        if body is None:
            return  # the client left
        client = scope.get("client")
        try:
            status, text = await route.handle(core, body, client[0] if client else "")
        except Exception as exc:
            log.error("unexpected error on %s %s", route.method, route.path, exc_info=exc)
            status, text = 500, json.dumps({"code": "internal", "message": "internal error; see the server log"})
        await answer(send, status, text)

    return front


def install(app, core, connectors) -> None:
    """Put the connectors' hot HTTP routes in front of `app.asgi_app`."""
    routes = [route for connector in connectors for route in connector.http_routes]
    app.asgi_app = http_front(app.asgi_app, core, routes, lambda: app.config["BODY_TIMEOUT"])

"""WebSocket routes served as plain ASGI, in front of the web framework.

Hot WebSocket paths (devices on `/ws`, Basics Station gateways) skip the framework's WebSocket
layer: each frame costs one ASGI message and no extra task or wrapper object. A connector declares
its `WsRoute`s; `websocket_front` dispatches on the ASGI scope (type, then path) and hands every
other scope, all of HTTP included, to the application unchanged. The handler gets an
`AsgiWebSocket` (what `WsConnection` needs: accept / receive / send / close, plus `refuse` for an
HTTP answer to the upgrade) and runs the connection in its own nursery (`WsConnection.run`).

A route that names a `rule` is also entered in the application's route map, so route audits
(tests/reliability/test_route_auth.py) keep seeing every path the daemon serves; the framework's
view for it is never reached while the front is in place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

import trio
from werkzeug.datastructures import Headers
from werkzeug.sansio.request import Request

from .wsbatch import deliver_eagerly, queued_receive, release_handshake
from .wsconn import ConnectionEnded

Asgi = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class _Released(tuple):
    """The headers of a scope once let go (see AsgiWebSocket.accept): empty, and recognisable."""


_RELEASED = _Released()


class AsgiWebSocket:
    """A server WebSocket over raw ASGI messages, with the methods WsConnection uses."""

    __slots__ = ("scope", "_receive", "_send", "remote", "remote_addr", "path",
                 "requested_subprotocols", "_headers", "_handshake", "gone")

    def __init__(self, scope: dict, receive, send):
        self.scope = scope
        self._receive = receive
        self._send = send
        client = scope.get("client") or ("", 0)
        self.remote = client if type(client) is tuple and type(client[0]) is str and type(client[1]) is int \
            else (str(client[0]), int(client[1] or 0))
        self.remote_addr = self.remote[0]
        self.path: str = scope.get("path", "")
        subprotocols = scope.get("subprotocols") or ()
        self.requested_subprotocols = subprotocols if type(subprotocols) is list else list(subprotocols)
        self._headers: dict[str, str] | None = None
        self._handshake: Request | None = None
        self.gone = False

    @property
    def headers(self) -> dict[str, str]:
        """Request headers, lower-case names (built on first use: most connections never ask)."""
        if self._headers is None:
            self._headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                             for k, v in self._request_headers()}
        return self._headers

    def _request_headers(self):
        headers = self.scope.get("headers", ())
        if headers is _RELEASED:
            raise RuntimeError("the upgrade request's headers were let go when the WebSocket was accepted "
                               "(accept(keep_request=False))")
        return headers

    @property
    def handshake(self) -> Request:
        """The upgrade request as the web framework reads one (`args`, `cookies`, `headers` in any
        case, `scheme`, `remote_addr`), for routes that authenticate operators; built on first use."""
        if self._handshake is None:
            scope = self.scope
            self._handshake = Request(
                "GET", scope.get("scheme", "ws"), scope.get("server"), scope.get("root_path", ""), self.path,
                scope.get("query_string", b""), Headers([(k.decode("latin-1"), v.decode("latin-1"))
                                                         for k, v in self._request_headers()]),
                self.remote_addr)
        return self._handshake

    @property
    def send_callable(self):
        """The server's ASGI `send` for this connection (gatewayd/web/wsbatch.py looks behind it)."""
        return self._send

    def deliver_eagerly(self) -> None:
        """Frames arrive queued together instead of one scheduler turn each (wsbatch.deliver_eagerly)."""
        deliver_eagerly(self._send)

    async def accept(self, subprotocol: str | None = None, *, keep_request: bool = True) -> None:
        """Raises ConnectionEnded when the client left during the handshake. With `keep_request`
        False the upgrade request's headers are let go (`headers` and `handshake` then work only if
        they were read before): for the many connections that never look at them again."""
        message = await self._receive()  # websocket.connect
        if message["type"] != "websocket.connect":
            raise ConnectionEnded(None, "the client left during the handshake")
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol})
        release_handshake(self._send)
        if not keep_request:
            # The scope is shared with the server, which reads the headers only while the
            # handshake is under way (its access log of the answer).
            self.scope["headers"] = _RELEASED

    async def refuse(self, status: int, text: str, headers: Iterable[tuple[str, str]] = (), *,
                     content_type: str = "text/plain; charset=utf-8") -> None:
        """Answer the upgrade request with HTTP `status` instead of a WebSocket (a close frame when
        the server cannot send HTTP answers to upgrade requests)."""
        if "websocket.http.response" in (self.scope.get("extensions") or {}):
            fields = [(b"content-type", content_type.encode("latin-1"))]
            fields += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
            await self._send({"type": "websocket.http.response.start", "status": status, "headers": fields})
            await self._send({"type": "websocket.http.response.body", "body": (text.rstrip("\n") + "\n").encode()})
        else:
            await self._send({"type": "websocket.close", "code": 1008})

    async def refuse_json(self, status: int, code: str, message: str) -> None:
        """`refuse` with the JSON error body the REST API answers with ({"code", "message"})."""
        await self.refuse(status, json.dumps({"code": code, "message": message}, separators=(",", ":")),
                          content_type="application/json")

    async def receive(self) -> str | bytes:
        return self._frame(await self._receive())

    def receive_nowait(self) -> str | bytes:
        """The next frame if the server has one queued already, else raise trio.WouldBlock."""
        take = queued_receive(self._receive)  # (looked up per call: no bound method kept per connection)
        if take is None:
            raise trio.WouldBlock
        try:
            message = take()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise trio.WouldBlock from None  # the waiting receive reports the end
        return self._frame(message)

    @property
    def asgi_receive(self):
        """The server's ASGI `receive`, for a read loop that turns messages into frames itself
        (`frame_of`) and so keeps no coroutine of this class waiting per connection."""
        return self._receive

    def _frame(self, message: dict) -> str | bytes:
        """The frame an ASGI message carries; raises ConnectionEnded on a disconnect."""
        if message["type"] == "websocket.receive":
            text = message.get("text")
            return text if text is not None else message.get("bytes") or b""
        self.gone = True  # websocket.disconnect
        raise ConnectionEnded(message.get("code"), "the peer left")

    frame_of = _frame

    async def send(self, data: str | bytes) -> None:
        if not self.gone:
            key = "text" if isinstance(data, str) else "bytes"
            await self._send({"type": "websocket.send", key: data})

    async def close(self, code: int, reason: str = "") -> None:
        if not self.gone:
            self.gone = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


# serve(core, websocket, path) answers one connection.
Serve = Callable[[Any, AsgiWebSocket, str], Awaitable[None]]


@dataclass(frozen=True)
class WsRoute:
    """WebSocket paths a connector serves as plain ASGI.

    `paths`: exact paths, or a function of the settings giving them (configurable paths);
    `prefix`: a path prefix instead (the rest of the path is the handler's to parse);
    `rule`: the route-map rule to list it under (None: not listed); `setup(core)`: run once when
    the application is built (per-route state such as admission limits)."""

    serve: Serve
    paths: tuple[str, ...] | Callable[[Any], Iterable[str]] = ()
    prefix: str | None = None
    rule: str | bool | None = True  # True: list each exact path under its own name
    setup: Callable[[Any], None] | None = None

    def exact_paths(self, settings) -> list[str]:
        return list(self.paths(settings) if callable(self.paths) else self.paths)


def websocket_front(app: Asgi, core, routes: Iterable[WsRoute]) -> Asgi:
    """`app` with the WebSocket paths of `routes` answered in front of it. An exact path belongs to
    the first route that names it; prefixes are tried after exact paths, in order."""
    exact: dict[str, WsRoute] = {}
    prefixes: list[tuple[str, WsRoute]] = []
    for route in routes:
        for path in route.exact_paths(core.settings):
            exact.setdefault(path, route)
        if route.prefix:
            prefixes.append((route.prefix, route))
    if not exact and not prefixes:
        return app

    def front(scope: dict[str, Any], receive, send) -> Awaitable[None]:
        # Not a coroutine function: it hands back the route's (or the application's) awaitable, so
        # a connection served here keeps no frame of the front waiting for its whole life.
        if scope["type"] == "websocket":
            path = scope.get("path", "")
            route = exact.get(path)
            if route is None:
                route = next((r for prefix, r in prefixes if path.startswith(prefix)), None)
            if route is not None:
                return route.serve(core, AsgiWebSocket(scope, receive, send), path)
        return app(scope, receive, send)

    return front


async def _served_in_front() -> None:  # pragma: no cover - the front answers these paths first
    raise RuntimeError("this WebSocket path is served by the ASGI front")


def install(app, core, connectors) -> None:
    """Put the connectors' WebSocket routes in front of `app.asgi_app` and list them in its route map."""
    routes = [route for connector in connectors for route in connector.websockets]
    for i, route in enumerate(routes):
        if route.setup is not None:
            route.setup(core)
        if route.rule is True:
            for j, path in enumerate(route.exact_paths(core.settings)):
                if not any(r.rule == path for r in app.url_map.iter_rules()):
                    app.add_websocket(path, f"asgi_ws_{i}_{j}", _served_in_front)
        elif isinstance(route.rule, str):
            app.add_websocket(route.rule, f"asgi_ws_{i}", _served_in_front)
    app.asgi_app = websocket_front(app.asgi_app, core, routes)

"""The Station endpoints on the main port, served as plain ASGI in front of the web application:
`/router-info` (discovery) and `/router/<eui>` (data).

A station sends a message per received frame; taking them through the web framework's WebSocket
layer would cost an extra task hop and message object per frame, so these two paths are answered
here, before the application sees them, through `AsgiWebSocket` (the accept / receive / send /
close a `WsConnection` needs). Everything else goes on to the application unchanged.

The upgrade request gives the gateway's EUI, its bearer token and where it connected to; the
sessions (session.py) do the rest. A refused gateway gets an HTTP answer instead of a WebSocket:
401 for a missing or wrong token, 403 for an unknown gateway, 429 for a source with too many
failed tokens, 404 for a path that names no EUI.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any, Awaitable, Callable

from ....web.wsconn import ConnectionEnded, WsConnection
from . import codec, session

DISCOVERY_PATH = "/router-info"
TOKEN_FAILURES = "gateway_token"  # failed attempts are limited per source like logins (security.*)
DATA_HEARTBEAT = 86_400.0  # stations may be silent for long: liveness comes from WebSocket pings
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")

Asgi = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class AsgiWebSocket:
    """A server WebSocket over raw ASGI messages, with the methods WsConnection uses."""

    def __init__(self, scope: dict, receive, send):
        self.scope = scope
        self._receive = receive
        self._send = send
        client = scope.get("client") or ("", 0)
        self.remote = (str(client[0]), int(client[1] or 0))
        self.remote_addr = self.remote[0]
        self.path: str = scope.get("path", "")
        self.requested_subprotocols = list(scope.get("subprotocols") or ())
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        self.gone = False

    async def accept(self, subprotocol: str | None = None) -> None:
        message = await self._receive()  # websocket.connect
        if message["type"] != "websocket.connect":
            raise ConnectionEnded(None, "the client left during the handshake")
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol})

    async def refuse(self, status: int, text: str) -> None:
        """Answer the upgrade request with HTTP `status` instead of a WebSocket."""
        if "websocket.http.response" in (self.scope.get("extensions") or {}):
            await self._send({"type": "websocket.http.response.start", "status": status,
                              "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await self._send({"type": "websocket.http.response.body", "body": (text + "\n").encode()})
        else:
            await self._send({"type": "websocket.close", "code": 1008})

    async def receive(self) -> str | bytes:
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            return text if text is not None else message.get("bytes") or b""
        self.gone = True  # websocket.disconnect
        raise ConnectionEnded(message.get("code"), "the peer left")

    async def send(self, data: str | bytes) -> None:
        if not self.gone:
            key = "text" if isinstance(data, str) else "bytes"
            await self._send({"type": "websocket.send", key: data})

    async def close(self, code: int, reason: str = "") -> None:
        if not self.gone:
            self.gone = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


def _bearer(ws: AsgiWebSocket) -> str | None:
    scheme, _, token = ws.headers.get("authorization", "").strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _base_url(core, ws: AsgiWebSocket) -> str | None:
    """ws(s)://host:port the station reached us at (or lorawan.station_public_url)."""
    public = core.settings.lorawan.station_public_url
    if public:
        return public
    host = ws.headers.get("host", "")
    if not _HOST.fullmatch(host):
        return None
    secure = ws.scope.get("scheme") in ("wss", "https")
    if not re.search(r":\d+$", host):
        host = f"{host}:{443 if secure else 80}"
    return f"{'wss' if secure else 'ws'}://{host}"


async def discovery(core, ws: AsgiWebSocket) -> None:
    base = _base_url(core, ws)
    if base is None:
        await ws.refuse(400, "the Host header is not a host name")
        return
    conn = WsConnection(ws, heartbeat=session.DISCOVERY_TIMEOUT * 2, queue_size=4, connections=core.connections)
    await conn.run(partial(session.discovery, core.service("station"), base, _bearer(ws)))


async def data(core, ws: AsgiWebSocket, eui_text: str) -> None:
    station = core.service("station")
    try:
        eui = codec.eui_hex(codec.parse_eui(eui_text))
    except codec.StationError:
        await ws.refuse(404, "not a gateway EUI")
        return
    host = ws.remote[0]
    if core.access.blocked(TOKEN_FAILURES, host):
        await ws.refuse(429, "too many failed attempts; retry later")
        return
    reason = station.check(eui, _bearer(ws))
    if reason is not None:
        station.refuse(eui, host, reason)
        if reason == station.AUTH_FAILED:
            await core.access.record_failure(TOKEN_FAILURES, host, eui)
            await ws.refuse(401, reason)
        else:
            await ws.refuse(403, reason)
        return
    conn = WsConnection(ws, heartbeat=DATA_HEARTBEAT, queue_size=256, connections=core.connections)
    await conn.run(partial(session.data_connection, station, eui, ws.remote))


def station_front(app: Asgi, core) -> Asgi:
    """`app` with the Station paths answered in front of it."""

    async def front(scope: dict[str, Any], receive, send) -> None:
        if scope["type"] == "websocket":
            path = scope.get("path", "")
            if path == DISCOVERY_PATH:
                return await _guarded(discovery(core, AsgiWebSocket(scope, receive, send)))
            if path.startswith(session.DATA_PATH):
                return await _guarded(data(core, AsgiWebSocket(scope, receive, send), path[len(session.DATA_PATH):]))
        return await app(scope, receive, send)

    return front


async def _guarded(handler: Awaitable[None]) -> None:
    try:
        await handler
    except ConnectionEnded:
        pass  # the peer left before the handshake finished

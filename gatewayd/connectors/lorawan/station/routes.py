"""The Station endpoints on the main port, served as plain ASGI in front of the web application:
`/router-info` (discovery) and `/router/<eui>` (data).

A station sends a message per received frame; taking them through the web framework's WebSocket
layer would cost an extra task hop and message object per frame, so these two paths are answered
here, before the application sees them (`WEBSOCKETS`, see gatewayd/web/asgi_ws.py).

The upgrade request gives the gateway's EUI, its bearer token and where it connected to; the
sessions (session.py) do the rest. A refused gateway gets an HTTP answer instead of a WebSocket:
401 for a missing or wrong token, 403 for an unknown gateway, 429 for a source with too many
failed tokens, 404 for a path that names no EUI.
"""

from __future__ import annotations

import re
from functools import partial

from ....web.asgi_ws import AsgiWebSocket, WsRoute
from ....web.wsconn import WsConnection
from . import codec, session

DISCOVERY_PATH = "/router-info"
TOKEN_FAILURES = "gateway_token"  # failed attempts are limited per source like logins (security.*)
DATA_HEARTBEAT = 86_400.0  # stations may be silent for long: liveness comes from WebSocket pings (ping=True)
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")


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
    conn = WsConnection(ws, heartbeat=DATA_HEARTBEAT, queue_size=256, connections=core.connections, ping=True)
    await conn.run(partial(session.data_connection, station, eui, ws.remote))


async def _discovery(core, ws: AsgiWebSocket, path: str) -> None:
    await discovery(core, ws)


async def _data(core, ws: AsgiWebSocket, path: str) -> None:
    await data(core, ws, path[len(session.DATA_PATH):])


# Not listed in the route map: the route audit's anonymous probe does not apply to gateway tokens.
WEBSOCKETS = (WsRoute(_discovery, paths=(DISCOVERY_PATH,), rule=None),
              WsRoute(_data, prefix=session.DATA_PATH, rule=None))

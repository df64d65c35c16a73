"""The Station endpoints on the main port: `/router-info` (discovery) and `/router/<eui>` (data).

Thin: the upgrade request gives the gateway's EUI, its bearer token and where it connected to;
the sessions (session.py) do the rest over a `WsConnection`. A refused gateway gets an HTTP answer
instead of a WebSocket: 401 for a missing or wrong token, 403 for an unknown gateway, 429 for a
source with too many failed tokens.
"""

from __future__ import annotations

import re
from functools import partial

from quart import Blueprint, Response, current_app, websocket

from ....transports.wsconn import WsConnection
from . import codec, session

blueprint = Blueprint("station", __name__)

TOKEN_FAILURES = "gateway_token"  # failed attempts are limited per source like logins (security.*)
DATA_HEARTBEAT = 86_400.0  # stations may be silent for long: liveness comes from WebSocket pings
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")


def _bearer() -> str | None:
    value = websocket.headers.get("Authorization", "")
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _base_url(core) -> str | None:
    """ws(s)://host:port the station reached us at (or lorawan.station_public_url)."""
    public = core.settings.lorawan.station_public_url
    if public:
        return public
    host = websocket.headers.get("Host", "")
    if not _HOST.fullmatch(host):
        return None
    secure = websocket.scheme in ("wss", "https")
    if not re.search(r":\d+$", host):
        host = f"{host}:{443 if secure else 80}"
    return f"{'wss' if secure else 'ws'}://{host}"


def _refused(status: int, text: str) -> Response:
    return Response(text + "\n", status, {"Content-Type": "text/plain; charset=utf-8"})


@blueprint.websocket("/router-info")
async def router_info():
    core = current_app.config["CORE"]
    base = _base_url(core)
    if base is None:
        return _refused(400, "the Host header is not a host name")
    conn = WsConnection(websocket._get_current_object(), heartbeat=session.DISCOVERY_TIMEOUT * 2, queue_size=4,
                        connections=core.connections)
    await conn.run(partial(session.discovery, core.service("station"), base, _bearer()))
    return None


@blueprint.websocket("/router/<eui>")
async def router(eui: str):
    core = current_app.config["CORE"]
    station = core.service("station")
    try:
        eui = codec.eui_hex(codec.parse_eui(eui))
    except codec.StationError:
        return _refused(404, "not a gateway EUI")
    client = websocket.scope.get("client") or ("", 0)
    remote = (str(client[0]), int(client[1] or 0))
    if core.access.blocked(TOKEN_FAILURES, remote[0]):
        return _refused(429, "too many failed attempts; retry later")
    reason = station.check(eui, _bearer())
    if reason is not None:
        station.refuse(eui, remote[0], reason)
        if reason == station.AUTH_FAILED:
            await core.access.record_failure(TOKEN_FAILURES, remote[0], eui)
            return _refused(401, reason)
        return _refused(403, reason)
    conn = WsConnection(websocket._get_current_object(), heartbeat=DATA_HEARTBEAT, queue_size=256,
                        connections=core.connections)
    await conn.run(partial(session.data_connection, station, eui, remote))
    return None

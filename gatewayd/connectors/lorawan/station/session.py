"""The two Station WebSocket sessions, written against a connection with `receive()`,
`send_nowait(text)`, `request_close(code, reason)` and `ending` (transports/wsconn.py), so they do
not depend on the web framework that accepted the socket.

- discovery (`/router-info`): one query, one answer, then the LNS closes;
- data (`/router/<eui>`): `version` -> `router_config`, then uplinks, `dntxed` and `timesync`
  for as long as the station stays connected.
"""

from __future__ import annotations

import trio

from . import codec

CLOSE_TOO_BIG = 1009
CLOSE_NORMAL = 1000
CLOSE_REFUSED = 4001
DISCOVERY_TIMEOUT = 10.0  # seconds for the station's one discovery query
DETACH_TIMEOUT = 2.0
DATA_PATH = "/router/"


def data_uri(base_url: str, eui: int) -> str:
    """Where discovery sends the station: `base_url` carries scheme, host and an explicit port."""
    return f"{base_url.rstrip('/')}{DATA_PATH}{codec.eui_hex(eui)}"


async def discovery(station, base_url: str, token: str | None, conn) -> None:
    """Answer one `{"router": ID}` with the data URI, or with an error for a refused gateway."""
    frame = None
    with trio.move_on_after(DISCOVERY_TIMEOUT):
        frame = await conn.receive()
    if frame is None:
        return
    try:
        router = codec.parse_discovery(frame, station.max_frame)
    except codec.StationError as exc:
        station.core.metrics.inc("gatewayd_station_malformed_total", reason=exc.code)
        conn.send_nowait(codec.discovery_error(None, exc.message))
        return
    eui = codec.eui_hex(router)
    reason = station.check(eui, token)
    if reason is not None:
        station.refuse(eui, "discovery", reason)
        conn.send_nowait(codec.discovery_error(router, reason))
        return
    conn.send_nowait(codec.discovery_reply(router, 0, data_uri(base_url, router)))
    conn.request_close(CLOSE_NORMAL, "")


async def data_connection(station, eui: str, remote: tuple, conn) -> None:
    """Serve an admitted station until it goes (a frame over the limit closes with 1009)."""
    link = await station.attach(eui, conn, remote)
    if link is None:
        conn.request_close(CLOSE_REFUSED, "gateway refused")
        return
    conn.spawn(station.keepalive, link)
    limit = station.max_frame
    handle = station.handle

    async def each(frame: str | bytes) -> None:
        if len(frame) > limit:
            station.core.metrics.inc("gatewayd_station_malformed_total", reason="too_big")
            conn.request_close(CLOSE_TOO_BIG, f"message over {limit} bytes")
        else:
            await handle(link, frame)

    try:
        await conn.each_frame(each)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(DETACH_TIMEOUT):
            await station.detach(link)

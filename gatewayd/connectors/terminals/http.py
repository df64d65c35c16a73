"""POST /api/device-http: attendance terminals in HTTP mode (PROTOCOLS.md 3.1). I/O only: the
terminals service decodes, decides and builds the reply."""

from __future__ import annotations

from quart import Blueprint, Response, current_app, request

from ...web.asgi_http import HttpRoute
from ...web.auth import client_address

blueprint = Blueprint("device_http", __name__)


async def handle(core, body: bytes, remote: str) -> tuple[int, str]:
    return await core.service("terminals").handle_http(body, remote)


# Served by the plain-ASGI front (gatewayd/web/asgi_http.py); the framework's route below is the
# same handler, kept for the route map and for an app without the front.
HTTP_ROUTES = (HttpRoute("POST", "/api/device-http", handle),)


@blueprint.post("/api/device-http")
async def device_http():
    body = await request.get_data(cache=False)
    status, text = await handle(current_app.config["CORE"], body, client_address())
    return Response(text, status, content_type="application/json")

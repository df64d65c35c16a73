"""POST /api/device-http: attendance terminals in HTTP mode (PROTOCOLS.md 3.1). I/O only: the
terminals service decodes, decides and builds the reply."""

from __future__ import annotations

from quart import Blueprint, Response, current_app, request

from ...web.auth import client_address

blueprint = Blueprint("device_http", __name__)


@blueprint.post("/api/device-http")
async def device_http():
    core = current_app.config["CORE"]
    body = await request.get_data(cache=False)
    status, text = await core.service("terminals").handle_http(body, client_address())
    return Response(text, status, content_type="application/json")

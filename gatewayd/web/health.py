"""GET /healthz (public) and GET /metrics (API key unless from localhost)."""

from __future__ import annotations

import time

from quart import Blueprint, Response, current_app, request

from .. import __version__
from .auth import LOCAL_ADDRESSES, client_address, identify, json_error

blueprint = Blueprint("health", __name__)
PUBLIC_ROUTES = {"/healthz"}


@blueprint.get("/healthz")
async def healthz():
    core = current_app.config["CORE"]
    ok = core.writer.failed is None
    body = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "journal_seq": core.writer.durable_seq,
        "journal_writable": ok,
        "uptime_seconds": round(time.monotonic() - core.started, 3),
    }
    mqtt = core.services.get("mqtt")
    if mqtt is not None and mqtt.enabled:
        # A broker that is away makes the appliance degraded, not unavailable: it still serves devices.
        body["mqtt"] = {"state": mqtt.state, "backlog_records": mqtt.backlog}
        if ok and mqtt.degraded():
            body["status"] = "degraded"
    return body, 200 if ok else 503


@blueprint.get("/metrics")
async def metrics():
    core = current_app.config["CORE"]
    local = client_address() in LOCAL_ADDRESSES and core.settings.security.metrics_public_on_localhost
    if not local and await identify(request) is None:
        return json_error("unauthorized", "an API key is required for /metrics from this address", 401)
    return Response(core.metrics.render(), content_type="text/plain; version=0.0.4")

"""The Quart application: every HTTP and WebSocket route on the one port."""

from __future__ import annotations

import logging

from quart import Response, has_request_context, request, websocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from ..journal.writer import JournalUnavailable
from ..ops import OpError
from .auth import json_error
from .rest_common import journal_unavailable

log = logging.getLogger("gatewayd.web")


def blueprints():
    from . import device_ws, health, rest_devices
    from . import monitor_ws, tx_api
    from . import device_http, rest_terminals
    from . import rest_gateways, rest_history
    from . import dashboard, dashboard_ws
    from ..connectors.terminals.push import routes as push_routes
    from ..connectors.alerts import routes as alert_routes
    from ..connectors.webhooks import routes as webhook_routes

    return [alert_routes.blueprint, webhook_routes.blueprint, health.blueprint, device_ws.blueprint, rest_devices.blueprint,
            monitor_ws.blueprint, tx_api.blueprint, device_http.blueprint, rest_terminals.blueprint,
            rest_gateways.blueprint, rest_history.blueprint, dashboard.blueprint, dashboard_ws.blueprint,
            push_routes.blueprint]


def create_app(core) -> QuartTrio:
    app = QuartTrio("gatewayd", static_folder=None)
    app.config["CORE"] = core
    app.config["MAX_CONTENT_LENGTH"] = core.settings.server.max_body_bytes
    app.config["BODY_TIMEOUT"] = 30
    app.config["RESPONSE_TIMEOUT"] = 60
    for bp in blueprints():
        app.register_blueprint(bp)
    from ..connectors.lorawan.station.routes import station_front

    app.asgi_app = station_front(app.asgi_app, core)  # LoRa Basics Station: plain ASGI, before quart

    @app.errorhandler(OpError)
    async def op_error(exc: OpError):
        return json_error(exc.code, exc.message, exc.status)

    app.register_error_handler(JournalUnavailable, journal_unavailable)  # also the history store's 503

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException):
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}
        response = json_error(codes.get(exc.code, "http_error"), exc.description or exc.name, exc.code or 500)
        if getattr(exc, "valid_methods", None):  # a 405 must say what is allowed (RFC 9110)
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception):
        # WebSocket routes come here too, without a request context.
        where = f"{request.method} {request.path}" if has_request_context() else f"WebSocket {websocket.path}"
        log.error("unexpected error on %s", where, exc_info=exc)
        return json_error("internal", "internal error; see the server log", 500)

    @app.after_request
    async def count(response: Response) -> Response:
        core.metrics.inc("gatewayd_http_requests_total", status=str(response.status_code))
        return response

    return app

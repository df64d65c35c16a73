"""The Quart application: every HTTP and WebSocket route on the one port (the ground floor's and
those the connectors declare)."""

from __future__ import annotations

import logging

from quart import Response, has_request_context, request, websocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from ..journal.writer import JournalUnavailable
from ..ops import OpError
from . import asgi_http, asgi_ws, dashboard, dashboard_settings, health, rest_history
from .auth import json_error
from .rest import journal_unavailable

log = logging.getLogger("gatewayd.web")


def blueprints(connectors):
    """Health first, then the history queries, each connector's routes and pages, then the dashboard's shell."""
    return [health.blueprint, rest_history.blueprint, *(bp for connector in connectors for bp in connector.blueprints),
            dashboard.blueprint, dashboard_settings.blueprint]


def create_app(core) -> QuartTrio:
    app = QuartTrio("gatewayd", static_folder=None)
    app.config["CORE"] = core
    app.config["MAX_CONTENT_LENGTH"] = core.settings.server.max_body_bytes
    app.config["BODY_TIMEOUT"] = 30
    app.config["RESPONSE_TIMEOUT"] = 60
    for bp in blueprints(core.connectors):
        app.register_blueprint(bp)
    asgi_ws.install(app, core, core.connectors)  # hot WebSocket paths, answered before quart
    asgi_http.install(app, core, core.connectors)  # hot HTTP paths, likewise

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

"""Who is calling: operators (API key or dashboard session) and where from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from typing import Any

from quart import current_app, g, jsonify, request

from ..access import API_KEY_PREFIX

LOCAL_ADDRESSES = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class Operator:
    kind: str  # "apikey" | "session"
    name: str

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"


def json_error(code: str, message: str, status: int):
    response = jsonify({"code": code, "message": message})
    response.status_code = status
    return response


def client_address(ctx=None) -> str:
    ctx = ctx or request
    remote = ctx.remote_addr or ""
    return remote


def _bearer(ctx) -> str | None:
    header = ctx.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    query = ctx.args.get("key") or None
    # A WebSocket handshake from a browser cannot carry a header, so `?key=` is its API key. On
    # plain HTTP `key` is also a parameter of some routes (a telemetry key): there it is a
    # credential only when it looks like one.
    if query is None or ctx is not request or query.startswith(API_KEY_PREFIX + "_"):
        return query
    return None


async def identify(ctx, core=None) -> Operator | None:
    """The operator behind a request or WebSocket handshake, or None. Bad keys are recorded.
    (`core`: for handshakes answered before the web framework, gatewayd/web/asgi_ws.py.)"""
    core = core or current_app.config["CORE"]
    key = _bearer(ctx)
    if key:
        entry = core.access.check_api_key(key)
        if entry is not None:
            return Operator("apikey", entry["name"])
        await core.access.record_failure("apikey", client_address(ctx))  # nothing of the value itself
        return None
    sessions = core.extras.get("sessions")
    if sessions is not None:
        user = sessions.user_from(ctx)
        if user:
            return Operator("session", user)
    return None


def operator_required(handler):
    """Decorator for HTTP routes that need an operator; sets g.operator."""

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any):
        core = current_app.config["CORE"]
        source = client_address()
        if core.access.blocked("apikey", source):
            return json_error("rate_limited", "too many failed attempts from this address; try later", 429)
        operator = await identify(request)
        if operator is None:
            return json_error("unauthorized", "an API key (Authorization: Bearer ...) or a dashboard login is required", 401)
        if operator.kind == "session" and not core.extras["sessions"].csrf_ok(request):
            return json_error("csrf", "a dashboard session needs the X-CSRF-Token header for this request", 403)
        g.operator = operator
        return await handler(*args, **kwargs)

    return wrapper


"""The /iclock endpoints of PUSH terminals. I/O only: the query and body go to `PushService`.

Replies are text/plain; hypercorn adds the `Date` header the terminals set their clocks from.
"""

from __future__ import annotations

from quart import Blueprint, Response, current_app, request

from ....errors import ProtocolError
from ....journal.writer import JournalUnavailable
from ....web.auth import client_address
from . import codec
from .service import UNAVAILABLE

blueprint = Blueprint("push_terminals", __name__)


def _text(status: int, text: str) -> Response:
    return Response(text, status, content_type="text/plain; charset=utf-8")


async def _serve(handler_name: str, with_body: bool) -> Response:
    try:
        query = codec.parse_query(request.args)
    except ProtocolError as exc:
        return _text(400, f"{exc.code}: {exc.message}")
    service = current_app.config["CORE"].service("push")
    handler = getattr(service, handler_name)
    try:
        if with_body:
            status, text = await handler(query, await request.get_data(cache=False), client_address())
        else:
            status, text = await handler(query, client_address())
    except JournalUnavailable:  # e.g. while registering an unknown terminal
        status, text = UNAVAILABLE
    return _text(status, text)


@blueprint.route("/iclock/cdata", methods=["GET", "POST"])
async def cdata():
    if request.method == "GET":
        return await _serve("handshake", False)
    return await _serve("upload", True)


@blueprint.get("/iclock/getrequest")
async def getrequest():
    return await _serve("poll", False)


@blueprint.post("/iclock/devicecmd")
async def devicecmd():
    return await _serve("results", True)


@blueprint.post("/iclock/registry")
async def registry():
    return await _serve("registry", True)


@blueprint.route("/iclock/push", methods=["GET", "POST"])
async def push_options():
    return await _serve("handshake", False)


@blueprint.get("/iclock/ping")
async def ping():
    return await _serve("poll_presence", False)

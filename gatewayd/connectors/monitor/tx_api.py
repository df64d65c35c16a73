"""POST /api/tx: a TX downlink request for scripts, with the same JSON and reply as on
/monitor/communications. The HTTP status mirrors the outcome (200 Success, 4xx/5xx Fail)."""

from __future__ import annotations

import logging

from quart import Blueprint, current_app, g, request

from .tx_request import MAX_TX_FRAME_CHARS
from .tx_dispatch import refuse_tx, submit_tx
from ...web.auth import client_address, operator_required

log = logging.getLogger("gatewayd.tx")

blueprint = Blueprint("tx_api", __name__)

# UTF-8 needs at most 4 bytes a character: anything longer cannot be a valid request.
MAX_BODY_BYTES = 4 * MAX_TX_FRAME_CHARS


@blueprint.post("/api/tx")
@operator_required
async def post_tx():
    core = current_app.config["CORE"]
    if (request.content_length or 0) > MAX_BODY_BYTES:
        outcome = refuse_tx("", f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    else:
        body = await request.get_data(cache=False)
        outcome = await submit_tx(core, body)
    if outcome.ok:
        log.info("TX accepted from %s (%s), reference %r", g.operator.actor, client_address(),
                 outcome.reference)
    return outcome.reply(), outcome.status

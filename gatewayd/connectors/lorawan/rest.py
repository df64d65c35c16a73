"""REST API for LoRa gateways and LoRaWAN sessions (docs/lorawan.md). Operators only.

    GET    /api/gateways                      every gateway (online, last seen, last stat)
    POST   /api/gateways {"eui", "name", "token"}  register a gateway (token: what a Station gateway presents)
    GET    /api/gateways/<eui>                one gateway
    DELETE /api/gateways/<eui>                forget it
    GET    /api/lorawan/devices[/<dev_eui>]   sessions: DevAddr, counters, queue, class, link (never keys)
    PATCH  /api/lorawan/devices/<dev_eui> {"class", "rx1_dr_offset", "rx2_dr", "rx2_freq", "rx1_delay",
                                           "max_duty_cycle"}  class A/C and the MAC settings to bring it to
    GET    /api/lorawan/devices/<dev_eui>/keys  the keys in clear (audited: lorawan.keys_shown)
    POST   /api/lorawan/devices/<dev_eui>/queue {"port", "payload" (hex), "confirm", "reference"}
    DELETE /api/lorawan/devices/<dev_eui>/queue
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g

from ...journal.writer import JournalUnavailable
from ...ops import OpError
from .state import SETTING_NAMES
from ...web.auth import operator_required
from ...web.rest import call, journal_unavailable, read_json_object

blueprint = Blueprint("rest_gateways", __name__, url_prefix="/api")
MAX_BODY = 16 * 1024


blueprint.register_error_handler(JournalUnavailable, journal_unavailable)


_call = call


async def _body(allowed: set[str], required: set[str]) -> dict[str, Any]:
    return await read_json_object(allowed, required, max_bytes=MAX_BODY)


@blueprint.get("/gateways")
@operator_required
async def list_gateways():
    return {"items": await _call("gateway.list")}


@blueprint.post("/gateways")
@operator_required
async def add_gateway():
    body = await _body({"eui", "name", "token"}, {"eui"})
    return await _call("gateway.add", eui=body["eui"], name=body.get("name") or "", actor=g.operator.actor,
                       token=body.get("token")), 201


@blueprint.get("/gateways/<eui>")
@operator_required
async def show_gateway(eui: str):
    return await _call("gateway.show", eui=eui)


@blueprint.delete("/gateways/<eui>")
@operator_required
async def remove_gateway(eui: str):
    return await _call("gateway.remove", eui=eui, actor=g.operator.actor)


@blueprint.get("/lorawan/devices")
@operator_required
async def list_sessions():
    return {"items": await _call("lorawan.devices")}


@blueprint.get("/lorawan/devices/<dev_eui>")
@operator_required
async def show_session(dev_eui: str):
    return await _call("lorawan.device", dev_eui=dev_eui)


@blueprint.patch("/lorawan/devices/<dev_eui>")
@operator_required
async def change_session(dev_eui: str):
    body = await _body(set(SETTING_NAMES), set())
    return await _call("lorawan.settings", dev_eui=dev_eui, actor=g.operator.actor, **body)


@blueprint.get("/lorawan/devices/<dev_eui>/keys")
@operator_required
async def show_keys(dev_eui: str):
    response = await _call("lorawan.keys", dev_eui=dev_eui, actor=g.operator.actor)
    return response, 200, {"Cache-Control": "no-store"}


@blueprint.post("/lorawan/devices/<dev_eui>/queue")
@operator_required
async def queue_downlink(dev_eui: str):
    body = await _body({"port", "payload", "confirm", "reference"}, {"port", "payload"})
    confirm = body.get("confirm", False)
    if not isinstance(confirm, bool):
        raise OpError("invalid", "confirm must be true or false", 422)
    return await _call("lorawan.tx", dev_eui=dev_eui, port=body["port"], payload=body["payload"], confirm=confirm,
                       reference=body.get("reference") or "", actor=g.operator.actor), 202


@blueprint.delete("/lorawan/devices/<dev_eui>/queue")
@operator_required
async def clear_queue(dev_eui: str):
    return await _call("lorawan.queue_clear", dev_eui=dev_eui, actor=g.operator.actor)

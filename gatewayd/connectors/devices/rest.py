"""REST API for devices, their commands and telemetry, and recent device events (docs/api.md).

Every route needs an operator (API key or dashboard session). The handlers only translate HTTP to
the same operations the command line runs.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, request

from ...journal.writer import JournalUnavailable
from ...ops import OpError
from ...web.auth import operator_required
from ...web.rest import call, journal_unavailable, read_json_object

blueprint = Blueprint("rest_devices", __name__, url_prefix="/api")


blueprint.register_error_handler(JournalUnavailable, journal_unavailable)


_call = call


async def _body(allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:
    return await read_json_object(allowed, required)


def _int_arg(name: str, default: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise OpError("invalid", f"query parameter {name} must be an integer", 422) from None


def _actor() -> str:
    return g.operator.actor


@blueprint.get("/devices")
@operator_required
async def list_devices():
    args = {k: request.args.get(k) for k in ("tag", "status", "kind") if request.args.get(k)}
    return {"items": await _call("device.list", **args)}


@blueprint.post("/devices")
@operator_required
async def create_device():
    body = await _body({"name", "kind", "tags", "lorawan"}, {"name"})
    return await _call("device.create", actor=_actor(), **body), 201


@blueprint.get("/devices/<device_id>")
@operator_required
async def show_device(device_id: str):
    return await _call("device.show", device_id=device_id)


@blueprint.route("/devices/<device_id>", methods=["PATCH"])
@operator_required
async def update_device(device_id: str):
    body = await _body({"name", "tags", "enabled"})
    return await _call("device.update", device_id=device_id, actor=_actor(), **body)


@blueprint.delete("/devices/<device_id>")
@operator_required
async def delete_device(device_id: str):
    return await _call("device.delete", device_id=device_id, actor=_actor())


@blueprint.post("/devices/<device_id>/token")
@operator_required
async def rotate_token(device_id: str):
    await _body(set())
    return await _call("device.rotate_token", device_id=device_id, actor=_actor())


@blueprint.post("/devices/<device_id>/<any(enable, disable):action>")
@operator_required
async def enable_device(device_id: str, action: str):
    await _body(set())
    return await _call(f"device.{action}", device_id=device_id, actor=_actor())


@blueprint.get("/devices/<device_id>/commands")
@operator_required
async def list_commands(device_id: str):
    items = await _call("device.commands", device_id=device_id, state=request.args.get("state") or None,
                        limit=_int_arg("limit", 100))
    return {"items": items}


@blueprint.post("/devices/<device_id>/commands")
@operator_required
async def send_command(device_id: str):
    body = await _body({"command", "payload", "expires_in"}, {"command"})
    return await _call("device.send", device_id=device_id, actor=_actor(), **body), 201


@blueprint.get("/devices/<device_id>/commands/<command_id>")
@operator_required
async def show_command(device_id: str, command_id: str):
    return await _call("device.command", device_id=device_id, command_id=command_id)


@blueprint.get("/devices/<device_id>/telemetry")
@operator_required
async def telemetry(device_id: str):
    args = request.args
    return await _call("device.telemetry", device_id=device_id,
                       since=args.get("from") or args.get("since") or None,
                       until=args.get("to") or args.get("until") or None, limit=_int_arg("limit", 100),
                       key=args.get("key") or None, every=args.get("every") or None)


@blueprint.get("/events")
@operator_required
async def events():
    return await _call("device.events", since=_int_arg("since", 0), limit=_int_arg("limit", 100),
                       device_id=request.args.get("device_id") or None)


"""REST API for attendance terminals and their punches (operators only):

    GET/POST       /api/terminals                      list (?status=) / add {sn, name?, tz?, cloudtime?, encoding?,
                                                       access?}
    GET/PATCH/DELETE /api/terminals/<sn>
    POST           /api/terminals/<sn>/approve | reject
    GET/POST       /api/terminals/<sn>/commands        list / queue {command, params?, reference?, confirm?,
                                                       expires_in?, wait?, confirm_destructive?}
    GET            /api/terminals/<sn>/users           the user list; ?refresh=1 runs getuserlist first
    PUT            /api/terminals/<sn>/users/<enrollid> setuserinfo {name, backupnum, record, admin?, wait?}
    GET            /api/attendance                     ?from&to&sn&enrollid&tz&limit&after, &format=csv
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from quart import Blueprint, Response, current_app, g, jsonify, request

from ... import ops
from ...journal.writer import JournalUnavailable
from ...ops import OpError
from .attendance import csv_export
from ...web.auth import json_error, operator_required

blueprint = Blueprint("rest_terminals", __name__)


def _retryable(handler):
    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any):
        try:
            return await handler(*args, **kwargs)
        except JournalUnavailable:
            return json_error("unavailable", "the journal cannot store changes right now; retry later", 503)

    return wrapper


async def _call(op: str, **args: Any) -> Any:
    return await ops.call(current_app.config["CORE"], op, args)


async def _body(*allowed: str) -> dict[str, Any]:
    data = await request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise OpError("invalid", "the body must be a JSON object", 400)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise OpError("invalid", f"unknown field {unknown[0]!r}; allowed: {', '.join(allowed)}", 422)
    return data


def _int_arg(name: str, default: int | None = None) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise OpError("invalid", f"{name} must be an integer, got {value[:40]!r}", 422) from None


def _settled_status(command: dict[str, Any]) -> int:
    return 200 if command.get("state") in ("acknowledged", "failed", "expired") else 202


@blueprint.get("/api/terminals")
@operator_required
async def list_terminals():
    return jsonify(await _call("terminal.list", status=request.args.get("status") or None))


@blueprint.post("/api/terminals")
@operator_required
@_retryable
async def add_terminal():
    body = await _body("sn", "name", "tz", "cloudtime", "encoding", "access")
    if "sn" not in body:
        raise OpError("invalid", "sn is required", 422)
    return jsonify(await _call("terminal.add", actor=g.operator.actor, **body)), 201


@blueprint.get("/api/terminals/<sn>")
@operator_required
async def get_terminal(sn: str):
    return jsonify(await _call("terminal.get", sn=sn))


@blueprint.patch("/api/terminals/<sn>")
@operator_required
@_retryable
async def update_terminal(sn: str):
    body = await _body("name", "tz", "cloudtime", "encoding", "access")
    return jsonify(await _call("terminal.update", sn=sn, actor=g.operator.actor, **body))


@blueprint.delete("/api/terminals/<sn>")
@operator_required
@_retryable
async def delete_terminal(sn: str):
    return jsonify(await _call("terminal.delete", sn=sn, actor=g.operator.actor))


@blueprint.post("/api/terminals/<sn>/approve")
@operator_required
@_retryable
async def approve_terminal(sn: str):
    return jsonify(await _call("terminal.approve", sn=sn, actor=g.operator.actor))


@blueprint.post("/api/terminals/<sn>/reject")
@operator_required
@_retryable
async def reject_terminal(sn: str):
    return jsonify(await _call("terminal.reject", sn=sn, actor=g.operator.actor))


@blueprint.get("/api/terminals/<sn>/commands")
@operator_required
async def list_commands(sn: str):
    await _call("terminal.get", sn=sn)
    return jsonify(await _call("terminal.commands", sn=sn, state=request.args.get("state") or None))


@blueprint.post("/api/terminals/<sn>/commands")
@operator_required
@_retryable
async def queue_command(sn: str):
    body = await _body("command", "params", "reference", "confirm", "expires_in", "wait", "confirm_destructive")
    if "command" not in body:
        raise OpError("invalid", "command is required", 422)
    command = await _call("terminal.command", sn=sn, actor=g.operator.actor, **body)
    return jsonify(command), _settled_status(command)


@blueprint.get("/api/terminals/<sn>/users")
@operator_required
async def list_users(sn: str):
    refresh = request.args.get("refresh", "")
    if refresh not in ("", "0", "1", "true", "false"):
        raise OpError("invalid", "refresh must be 1 or 0", 422)
    return jsonify(await _call("terminal.users", sn=sn, refresh=refresh in ("1", "true")))


@blueprint.put("/api/terminals/<sn>/users/<enrollid>")
@operator_required
@_retryable
async def set_user(sn: str, enrollid: str):
    body = await _body("name", "backupnum", "record", "admin", "wait")
    for required in ("name", "backupnum", "record"):
        if required not in body:
            raise OpError("invalid", f"{required} is required", 422)
    body.setdefault("wait", 30.0)
    command = await _call("terminal.set_user", sn=sn, enrollid=enrollid, actor=g.operator.actor, **body)
    return jsonify(command), _settled_status(command)


@blueprint.get("/api/attendance")
@operator_required
async def attendance():
    core = current_app.config["CORE"]
    args = request.args
    query = {"start": args.get("from") or None, "end": args.get("to") or None, "sn": args.get("sn") or None,
             "enrollid": _int_arg("enrollid"), "tz": args.get("tz") or None}
    fmt = args.get("format", "json")
    if fmt == "csv":
        chunks = await csv_export(core, **query)

        async def stream():
            for chunk in chunks:
                yield chunk.encode()

        return Response(stream(), 200, content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="attendance.csv"'})
    if fmt != "json":
        raise OpError("invalid", "format must be json or csv", 422)
    return jsonify(await _call("attendance.list", limit=_int_arg("limit", 1000), after=_int_arg("after", 0), **query))

"""Dashboard: every device exported as CSV, and devices imported from CSV in two steps: a preview
of what each row will do, then the result (devices created with their tokens, shown once; rows
refused with the reason). The file format is in csv_io.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from quart import Response, request

from ... import ops
from ...web.dashboard import (action, actor, back_to, core, field_error, form_value, go, hand_over, page, pages,
                              render, take_over, take_shown_once)
from .csv_io import (LORAWAN_COLUMNS, MAX_IMPORT_BYTES, MAX_IMPORT_ROWS, ImportRefused, ImportRow, export_devices,
                     read_import)
from .service import check_name, check_tags

blueprint = pages("dashboard_devices_csv", __name__)
PENDING = "devices-import"
RESULT = "devices-import-result"


@blueprint.get("/devices.csv")
@page
async def export_csv():
    devices = await ops.call(core(), "device.list", {})
    devices.sort(key=lambda d: (d["name"].lower(), d["id"]))
    lorawan = core().state.parts.get("lorawan")
    classes = {eui: s["settings"]["class"] for eui, s in lorawan.devices.items()} if lorawan else {}
    response = Response(export_devices(devices, classes), content_type="text/csv; charset=utf-8")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    response.headers["Content-Disposition"] = f'attachment; filename="devices-{stamp}.csv"'
    return response


@blueprint.get("/devices/import")
@page
async def import_page():
    pending = take_over(PENDING)
    if pending is not None:
        hand_over(PENDING, pending, pending["size"])  # still there for "Create" (and a reload) until it expires
    rows = [row.public() for row in pending["rows"]] if pending else []
    return await render("devices_import.html", active="devices", pending=pending, rows=rows,
                        ready=sum(1 for r in rows if not r["problem"]), max_kib=MAX_IMPORT_BYTES // 1024,
                        max_rows=MAX_IMPORT_ROWS)


@blueprint.post("/devices/import")
@action
async def upload():
    back_to("/devices/import")
    upload = (await request.files).get("file")
    if upload is not None and upload.filename:
        data, name = upload.read(MAX_IMPORT_BYTES + 1), upload.filename
    else:
        data, name = (await form_value("text")).encode(), "pasted text"
    if not data.strip():
        raise field_error("text", "choose a CSV file, or paste its text below")
    try:
        rows, ignored = read_import(data)
    except ImportRefused as exc:
        raise field_error("text", str(exc)) from None
    check_rows(core(), rows)
    hand_over(PENDING, {"rows": rows, "ignored": ignored, "filename": name[:120], "size": 2 * len(data)},
              2 * len(data))
    return go("/devices/import#preview")


def check_rows(core_, rows: list[ImportRow]) -> None:
    """Set each row's device.create arguments, or its problem, as far as can be known before creating."""
    existing = core_.state.devices.devices
    lorawan = core_.services.get("lorawan")
    euis: dict[str, int] = {}
    for row in rows:
        if row.problem is None:
            try:
                row.args = _row_args(row, existing, lorawan, euis)
            except ops.OpError as exc:
                row.problem = exc.message


def _row_args(row: ImportRow, existing: dict, lorawan, euis: dict[str, int]) -> dict[str, Any]:
    cells = row.cells
    if cells.get("id") and cells["id"] in existing:
        raise ops.OpError("conflict", f"device {cells['id']} exists already")
    args: dict[str, Any] = {"name": check_name(cells.get("name", "")), "tags": check_tags(cells.get("tags") or None)}
    given = {k: cells[k] for k in LORAWAN_COLUMNS if cells.get(k)}
    if row.kind == "ws":
        if given:
            raise ops.OpError("invalid", f"a WebSocket device has no {', '.join(given)}")
        return args
    if row.kind != "lorawan":
        raise ops.OpError("invalid", f"kind must be ws or lorawan, not {row.kind[:20]!r}")
    if lorawan is None:
        raise ops.OpError("unsupported", "LoRaWAN is not available in this gatewayd")
    dev_eui = lorawan.prepare_device(given)["dev_eui"]  # every check device.create makes, nothing stored
    if dev_eui in euis:
        raise ops.OpError("conflict", f"DevEUI {dev_eui} is on line {euis[dev_eui]} too")
    euis[dev_eui] = row.line
    args["lorawan"] = given
    return args


@blueprint.post("/devices/import/confirm")
@action
async def create_rows():
    back_to("/devices/import")
    pending = take_over(PENDING)
    if pending is None:
        raise ops.OpError("gone", "the preview has expired (it is kept five minutes): upload the file again", 410)
    created, refused = [], []
    for row in pending["rows"]:
        if row.problem is None:
            try:
                device = await ops.call(core(), "device.create", {**row.args, "actor": actor()})
            except ops.OpError as exc:
                row.problem = exc.message
            else:
                created.append({"line": row.line, "id": device["id"], "name": device["name"], "kind": device["kind"],
                                "token": device.get("token")})
                continue
        refused.append({"line": row.line, "name": row.cells.get("name", ""), "problem": row.problem})
    hand_over(RESULT, {"created": created, "refused": refused, "filename": pending["filename"]})
    return go("/devices/import/result")


@blueprint.get("/devices/import/result")
@page
async def import_result():
    result = take_shown_once(RESULT, "The result of an import, with the new devices' tokens,",
                             "The devices are on the devices list; rotate the token of any device that needs one.")
    return await render("devices_import_result.html", active="devices", **result)

"""Dashboard pages for WebSocket devices: the list, adding one (its token shown once), the detail
page (status, connections, telemetry, events, commands), and the registry actions."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import jinja2
from quart import request

from ... import ops
from ...web.dashboard import (WEB, action, actor, back_to, core, dash_time, field_error, form_value, go, hand_over,
                              notice, page, pages, render, subject_names, take_over)

CONNECTION_TYPES = ("device_connected", "device_disconnected")
MAX_PAYLOAD_CHARS = 16 * 1024

blueprint = pages("dashboard_devices", __name__)


def _matches(device: dict[str, Any], q: str, status: str, kind: str, tag: str) -> bool:
    if status and device["status"] != status:
        return False
    if kind and device["kind"] != kind:
        return False
    if tag and tag not in device["tags"]:
        return False
    if q:
        haystack = " ".join([device["name"], device["id"], *device["tags"]]).lower()
        return q.lower() in haystack
    return True


def _row(device: dict[str, Any]) -> dict[str, Any]:
    """What the list shows of a device, prepared here: filters in async templates are slow."""
    return {**device, "tags_csv": ",".join(device["tags"]),
            "kind_label": "LoRaWAN" if device["kind"] == "lorawan" else "WebSocket",
            "search": " ".join([device["name"], device["id"], *device["tags"]]).lower(),
            "status_label": device["status"].capitalize(), "seen_text": dash_time(device["last_seen"])}


@blueprint.get("/devices")
@page
async def devices():
    args = {k: (request.args.get(k) or "").strip()[:64] for k in ("q", "status", "kind", "tag")}
    everything = await ops.call(core(), "device.list", {})
    everything.sort(key=lambda d: (d["name"].lower(), d["id"]))
    shown = [_row(d) for d in everything if _matches(d, **args)]
    tags = sorted({t for d in everything for t in d["tags"]})
    return await render("devices.html", active="devices", devices=shown, total=len(everything), tags=tags,
                        filters=args, seq=core().state.seq)


@blueprint.get("/devices/new")
@page
async def new_device():
    return await render("device_new.html", active="devices")


def connection_info(device_id: str, token: str) -> dict[str, Any]:
    """What a device needs to connect here, from the address this page was opened with."""
    host = request.host or "localhost"
    scheme = "wss" if request.scheme == "https" else "ws"
    parts = urlsplit(f"//{host}")
    return {"url": f"{scheme}://{host}/ws", "host": parts.hostname or host,
            "port": parts.port or (443 if scheme == "wss" else 80), "path": "/ws", "tls": scheme == "wss",
            "device_id": device_id, "token": token}


# Code examples are plain text (the page escapes them), so they get an environment without HTML
# autoescaping; `q` writes a value as a string literal that JavaScript, Python and C all read.
_SNIPPETS = jinja2.Environment(loader=jinja2.FileSystemLoader(str(WEB / "templates")), autoescape=False,
                               keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
_SNIPPETS.filters["q"] = lambda value: json.dumps(str(value))


def snippets(conn: dict[str, Any]) -> dict[str, str]:
    return {key: _SNIPPETS.get_template(f"snippet_{key}.html").render(conn=conn) for key in ("node", "python", "esp32")}


# The LoRaWAN fields of the "Add device" form by activation; each is an argument of device.create's `lorawan`.
LORAWAN_FORM_FIELDS = {"otaa": ("dev_eui", "app_eui", "app_key", "class"),
                       "abp": ("dev_eui", "dev_addr", "nwk_s_key", "app_s_key", "app_eui", "class")}


@blueprint.post("/devices/new")
@action
async def create_device():
    back_to("/devices/new")
    args: dict[str, Any] = {"name": await form_value("name"), "tags": (await form_value("tags")) or None,
                            "actor": actor()}
    kind = await form_value("kind", "ws")
    if kind == "lorawan":
        activation = await form_value("activation", "otaa")
        if activation not in LORAWAN_FORM_FIELDS:
            raise field_error("activation", "choose OTAA or ABP")
        lorawan = {name: (await form_value(name)).strip() for name in LORAWAN_FORM_FIELDS[activation]}
        args["lorawan"] = {name: value for name, value in lorawan.items() if value}
    elif kind != "ws":
        raise field_error("kind", "choose WebSocket or LoRaWAN")
    created = await ops.call(core(), "device.create", args)
    if kind == "lorawan":
        notice("ok", f"Device {created['name']} created (LoRaWAN, {created['lorawan'].get('activation', '').upper()}, "
                     f"DevEUI {created['lorawan']['dev_eui']}). Its keys are stored sealed and are not shown again.")
        return go(f"/devices/{created['id']}")
    hand_over(f"token:{created['id']}", {"token": created["token"], "created": True})
    return go(f"/devices/{created['id']}/connect")


@blueprint.get("/devices/<device_id>/connect")
@page
async def device_token(device_id: str):
    """The token handed over by the create or rotate form, once: a reload shows it no more."""
    device = await ops.call(core(), "device.show", {"device_id": device_id})
    given = take_over(f"token:{device_id}")
    conn = connection_info(device["id"], given["token"] if given else "")
    return await render("device_token.html", active="devices", device=device, created=bool(given and given["created"]),
                        conn=conn, snippets=snippets(conn) if given else {}, shown=given is not None)


@blueprint.get("/devices/<device_id>")
@page
async def device_detail(device_id: str):
    state = core().state
    device = await ops.call(core(), "device.show", {"device_id": device_id})
    events = [e for e in state.devices.events if e["device_id"] == device_id]
    history = [e for e in events if e["type"] in CONNECTION_TYPES][-30:][::-1]
    reported = [e for e in events if e["type"] == "device_event"][-30:][::-1]
    commands = (await ops.call(core(), "device.commands", {"device_id": device_id, "limit": 50}))[::-1]
    latest = device.get("latest", {})
    numeric = [k for k, v in latest.items() if isinstance(v.get("value"), (int, float))
               and not isinstance(v.get("value"), bool)]
    link = None
    if device.get("lorawan") and "lorawan" in core().services:
        link = await ops.call(core(), "lorawan.device", {"dev_eui": device["lorawan"]["dev_eui"]})
    return await render("device.html", active="devices", device=device, history=history, reported=reported,
                        commands=commands, latest=latest, numeric=sorted(numeric), link=link,
                        sent_command=request.args.get("sent", ""), seq=core().state.seq)


@blueprint.post("/devices/<device_id>/lorawan-class")
@action
async def set_lorawan_class(device_id: str):
    back_to(f"/devices/{device_id}#lorawan")
    device = await ops.call(core(), "device.show", {"device_id": device_id})
    if not device.get("lorawan"):
        raise ops.OpError("invalid", "not a LoRaWAN device", 422)
    chosen = (await form_value("class")).strip()
    await ops.call(core(), "lorawan.settings", {"dev_eui": device["lorawan"]["dev_eui"], "class": chosen,
                                                "actor": actor()})
    notice("ok", f"{device['name']} is now class {chosen.upper()}.")
    return go(f"/devices/{device_id}#lorawan")


@blueprint.post("/devices/<device_id>/commands")
@action
async def send_command(device_id: str):
    back_to(f"/devices/{device_id}#commands")
    name = (await form_value("command")).strip()
    if not name:
        raise field_error("command", "enter the command's name, e.g. reboot")
    raw = (await form_value("payload")).strip() or "{}"
    if len(raw) > MAX_PAYLOAD_CHARS:
        raise field_error("payload", f"the payload is longer than {MAX_PAYLOAD_CHARS} characters")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise field_error("payload", f"the payload is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise field_error("payload", "the payload must be a JSON object, e.g. {\"delay\": 5}")
    command = await ops.call(core(), "device.send", {"device_id": device_id, "command": name,
                                                     "payload": payload, "actor": actor()})
    notice("ok", f"Command {command['command']} queued ({command['id']}).")
    return go(f"/devices/{device_id}?sent={command['id']}#commands")


@blueprint.get("/devices/<device_id>/<any(token, delete):what>")
@page
async def confirm_device_action(device_id: str, what: str):
    device = await ops.call(core(), "device.show", {"device_id": device_id})
    if what == "token":
        question = f"Give {device['name']} a new token?"
        detail = ("The current token stops working at once and the device is disconnected until it "
                  "is configured with the new one.")
        button = "Rotate token"
    else:
        question = f"Delete {device['name']}?"
        detail = ("The device is disconnected, its token stops working, and its telemetry and commands "
                  "are removed from the dashboard. The journal keeps the history.")
        button = "Delete device"
    return await render("confirm.html", active="devices", question=question, detail=detail, button=button,
                        target=f"/devices/{device_id}/{what}", cancel=f"/devices/{device_id}", danger=True)


@blueprint.post("/devices/<device_id>/token")
@action
async def rotate_token(device_id: str):
    back_to(f"/devices/{device_id}")
    result = await ops.call(core(), "device.rotate_token", {"device_id": device_id, "actor": actor()})
    hand_over(f"token:{device_id}", {"token": result["token"], "created": False})
    return go(f"/devices/{device_id}/connect")


@blueprint.post("/devices/<device_id>/delete")
@action
async def delete_device(device_id: str):
    back_to(f"/devices/{device_id}")
    device = await ops.call(core(), "device.show", {"device_id": device_id})
    await ops.call(core(), "device.delete", {"device_id": device_id, "actor": actor()})
    notice("ok", f"Device {device['name']} deleted.")
    return go("/devices")


@blueprint.post("/devices/<device_id>/<any(enable, disable):what>")
@action
async def enable_device(device_id: str, what: str):
    back_to(f"/devices/{device_id}")
    device = await ops.call(core(), f"device.{what}", {"device_id": device_id, "actor": actor()})
    notice("ok", f"Device {device['name']} {what}d.")
    return go(f"/devices/{device_id}")


@blueprint.get("/events")
@page
async def events():
    return await render("events.html", active="events", seq=core().state.seq,
                        categories=_event_categories(), names=subject_names())


def _event_categories() -> list[tuple[str, str]]:
    from ..monitor.dashboard_events import CATEGORIES

    labels = {"presence": "Connections", "telemetry": "Telemetry", "event": "Device events",
              "command": "Commands", "device": "Device changes", "terminal": "Terminals",
              "attendance": "Attendance", "gateway": "Gateways", "lorawan": "LoRaWAN", "auth": "Logins",
              "system": "System"}
    return [(c, labels.get(c, c)) for c in CATEGORIES]


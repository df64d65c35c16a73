"""Webhooks over HTTP (operators only) and their part of the dashboard's settings page.

    GET    /api/webhooks                 every webhook with its delivery state
    POST   /api/webhooks {url, name?, events?, secret?, headers?, timeout?, max_age?, batch?, batch_max?}
                                         add one (201; a generated secret is in the answer, once)
    DELETE /api/webhooks/<name>          remove one added at runtime
    POST   /api/webhooks/<name>/test     send a test event now
    POST   /settings/webhooks            the dashboard's form (and .../<name>/remove, .../<name>/test)
"""

from __future__ import annotations

from quart import Blueprint, g

from ...journal.writer import JournalUnavailable
from ...web.auth import operator_required
from ...web.dashboard import action, actor, back_to, form_value, go, hand_over, notice, page, pages, render, take_shown_once
from ...web.rest import call, journal_unavailable, read_json_object
from .service import ADD_KEYS

blueprint = Blueprint("rest_webhooks", __name__, url_prefix="/api")
blueprint.register_error_handler(JournalUnavailable, journal_unavailable)
dashboard = pages("dashboard_webhooks", __name__)
MAX_BODY = 16 * 1024


@blueprint.get("/webhooks")
@operator_required
async def list_webhooks():
    return {"items": await call("webhook.list")}


@blueprint.post("/webhooks")
@operator_required
async def add_webhook():
    body = await read_json_object(ADD_KEYS, {"url"}, max_bytes=MAX_BODY)
    return await call("webhook.add", **body, actor=g.operator.actor), 201


@blueprint.delete("/webhooks/<name>")
@operator_required
async def remove_webhook(name: str):
    return await call("webhook.remove", name=name, actor=g.operator.actor)


@blueprint.post("/webhooks/<name>/test")
@operator_required
async def test_webhook(name: str):
    return await call("webhook.test", name=name)


@dashboard.post("/settings/webhooks")
@action
async def add_from_settings():
    back_to("/settings#webhooks")
    events = [e.strip() for e in (await form_value("events")).split(",") if e.strip()] or ["*"]
    fields = {"url": (await form_value("url")).strip(), "events": events, "batch": await form_value("batch") == "on"}
    if (await form_value("name")).strip():
        fields["name"] = (await form_value("name")).strip()
    if await form_value("unsigned") == "on":
        fields["secret"] = ""
    hook = await call("webhook.add", **fields, actor=actor())
    hand_over(f"webhook:{hook['name']}", hook)
    return go(f"/settings/webhooks/{hook['name']}/added")


@dashboard.get("/settings/webhooks/<name>/added")
@page
async def added_webhook(name: str):
    """The new webhook (and its signing secret) handed over by the form, once."""
    hook = take_shown_once(f"webhook:{name}", "A webhook's signing secret",
                           "Remove the webhook and add it again if the secret was lost.")
    return await render("webhook_added.html", active="settings", hook=hook)


@dashboard.post("/settings/webhooks/<name>/remove")
@action
async def remove_from_settings(name: str):
    back_to("/settings#webhooks")
    await call("webhook.remove", name=name, actor=actor())
    notice("ok", f"Webhook {name} removed.")
    return go("/settings#webhooks")


@dashboard.post("/settings/webhooks/<name>/test")
@action
async def test_from_settings(name: str):
    back_to("/settings#webhooks")
    result = await call("webhook.test", name=name)
    if result["ok"]:
        notice("ok", f"Webhook {name}: the endpoint took the test event ({result['seconds']} s).")
    else:
        notice("error", f"Webhook {name}: the test failed: {result['error']}")
    return go("/settings#webhooks")

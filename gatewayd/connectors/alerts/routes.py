"""Alerts over HTTP (operators only) and the dashboard's Alerts page.

    GET  /api/alerts?state=active|cleared|all&limit=N   active ones newest first, then cleared ones
    POST /api/alerts/<id>/ack                          acknowledge (journaled as alert.acknowledged)
    GET  /alerts                                       the dashboard page (active first)
    POST /alerts/<id>/ack                              its acknowledge button
"""

from __future__ import annotations

from quart import Blueprint, g, request

from ...journal.writer import JournalUnavailable
from ...ops import OpError
from ...web.auth import operator_required
from ...web.dashboard import action, actor, back_to, core, go, notice, page, pages, render
from ...web.rest import call, journal_unavailable

blueprint = Blueprint("rest_alerts", __name__, url_prefix="/api")
blueprint.register_error_handler(JournalUnavailable, journal_unavailable)
dashboard = pages("dashboard_alerts", __name__)


def _limit() -> int:
    raw = request.args.get("limit", "200")
    if not raw.isdigit():
        raise OpError("invalid", "limit must be a positive integer", 422)
    return int(raw)


@blueprint.get("/alerts")
@operator_required
async def list_alerts():
    return {"items": await call("alert.list", state=request.args.get("state", "active"), limit=_limit())}


@blueprint.post("/alerts/<alert_id>/ack")
@operator_required
async def acknowledge(alert_id: str):
    return await call("alert.ack", alert_id=alert_id, actor=g.operator.actor)


@dashboard.get("/alerts")
@page
async def alerts_page():
    service = core().service("alerts")
    return await render("alerts.html", active="alerts", active_alerts=service.listing("active", 1000),
                        cleared=service.listing("cleared", 100))


@dashboard.post("/alerts/<alert_id>/ack")
@action
async def acknowledge_from_page(alert_id: str):
    back_to("/alerts")
    await call("alert.ack", alert_id=alert_id, actor=actor())
    notice("ok", "Alert acknowledged.")
    return go("/alerts")

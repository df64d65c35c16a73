"""Dashboard pages for LoRa: the packet forwarders (gateways) and the Real Time Monitor, which shows
the ResIOT communications stream (/monitor/communications) in a readable table."""

from __future__ import annotations

from quart import request

from ... import ops
from ...web.dashboard import core, page, pages, render, subject_names

blueprint = pages("dashboard_lora", __name__)


@blueprint.get("/gateways")
@page
async def gateways():
    if "lorawan" not in core().services:
        return await render("unavailable.html", active="gateways", what="LoRa gateways")
    items = await ops.call(core(), "gateway.list", {})
    return await render("gateways.html", active="gateways", gateways=items,
                        udp_port=core().extras.get("udp_port"), http_port=core().http_port, seq=core().state.seq)


@blueprint.get("/realtime")
@page
async def realtime():
    scheme = "wss" if request.scheme == "https" else "ws"
    base = f"{scheme}://{request.host}"
    urls = [("Communications", f"{base}/monitor/communications?key=YOUR_API_KEY"),
            ("Actions", f"{base}/monitor/actions?key=YOUR_API_KEY"),
            ("Communications from a sequence number", f"{base}/monitor/communications?key=YOUR_API_KEY&since=1")]
    return await render("realtime.html", active="realtime", urls=urls, seq=core().state.seq,
                        names=subject_names())

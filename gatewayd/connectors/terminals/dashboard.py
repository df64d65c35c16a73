"""Dashboard pages for attendance terminals (list, approval, detail, commands) and attendance."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from quart import Response, render_template, request

from ... import ops
from ...web.dashboard import action, actor, back_to, core, form_value, go, notice, page, pages, render
from .people import person_names
from .service import CONNECTOR_HTTP

ATTENDANCE_ROWS = 500
LIVE_ROWS = 200
USERS_SHOWN = 1000
QUICK_COMMANDS = {
    "backlog": ("getnewlog", "Pull backlog"),
    "time": ("settime", "Sync time"),
    "door": ("opendoor", "Open door"),
    "users": ("getuserlist", "Read the user list"),
}
PUSH_QUICK_COMMANDS = {
    "backlog": ("getnewlog", "Ask for new data"),
    "info": ("info", "Refresh device info"),
    "reboot": ("reboot", "Reboot"),
}


def _quick(terminal: dict) -> dict:
    """The commands the terminal can receive the way it talks to us now: an HTTP-mode terminal only
    asks and is answered, so it can receive none (its clock follows the cloudtime of every answer)."""
    if terminal.get("protocol") == "push":
        return PUSH_QUICK_COMMANDS
    return {} if terminal.get("connector") == CONNECTOR_HTTP else QUICK_COMMANDS

blueprint = pages("dashboard_terminals", __name__)


def _available() -> bool:
    return "terminals" in core().services and "attendance" in core().services


@blueprint.get("/terminals")
@page
async def terminals():
    if not _available():
        return await render("unavailable.html", active="terminals", what="Attendance terminals")
    everything = await ops.call(core(), "terminal.list", {})
    everything.sort(key=lambda t: (t["name"].lower(), t["sn"]))
    groups = {status: [t for t in everything if t["status"] == status]
              for status in ("pending", "accepted", "rejected")}
    return await render("terminals.html", active="terminals", groups=groups, total=len(everything),
                        seq=core().state.seq, default_tz=core().settings.terminals.timezone)


@blueprint.post("/terminals/add")
@action
async def add_terminal():
    back_to("/terminals")
    sn = (await form_value("sn")).strip()
    name = (await form_value("name")).strip() or None
    terminal = await ops.call(core(), "terminal.add", {"sn": sn, "name": name, "actor": actor()})
    notice("ok", f"Terminal {terminal['sn']} added.")
    return go("/terminals")


@blueprint.get("/terminals/<sn>/reject")
@page
async def confirm_reject(sn: str):
    terminal = await ops.call(core(), "terminal.get", {"sn": sn})
    held = terminal["held_records"]
    dropped = (f"The {held} punch{'es' if held != 1 else ''} kept while it waited {'are' if held != 1 else 'is'} "
               "dropped (the terminal may still have them)." if held else "No punches are kept for it.")
    return await render("confirm.html", active="terminals", question=f"Reject terminal {terminal['sn']}?",
                        detail=f"It is disconnected and refused from now on. {dropped}",
                        button=f"Reject and drop {held} punch{'es' if held != 1 else ''}" if held else "Reject",
                        target=f"/terminals/{terminal['sn']}/reject", cancel="/terminals", danger=True)


@blueprint.post("/terminals/<sn>/<any(approve, reject):what>")
@action
async def decide_terminal(sn: str, what: str):
    back_to("/terminals")
    terminal = await ops.call(core(), f"terminal.{what}", {"sn": sn, "actor": actor()})
    verb = "approved" if what == "approve" else "rejected"
    notice("ok", f"Terminal {terminal['sn']} {verb}.")
    return go("/terminals")


@blueprint.get("/terminals/<sn>")
@page
async def terminal_detail(sn: str):
    terminal = await ops.call(core(), "terminal.get", {"sn": sn})
    store = core().service("attendance")
    await core().history.wait_applied()
    recent = _named([store.to_public(p) for p in store.select(sn=terminal["sn"], newest_first=True, limit=50)])
    commands = (await ops.call(core(), "terminal.commands", {"sn": terminal["sn"]}))[-30:][::-1]
    users = await ops.call(core(), "terminal.users", {"sn": terminal["sn"]})
    return await render("terminal.html", active="terminals", terminal=terminal, punches=recent, commands=commands,
                        quick=_quick(terminal), users=users["users"][:USERS_SHOWN], users_total=len(users["users"]),
                        users_listed=users.get("listed"))


@blueprint.post("/terminals/<sn>/command")
@action
async def terminal_command(sn: str):
    back_to(f"/terminals/{sn}")
    which = await form_value("action")
    quick = _quick(await ops.call(core(), "terminal.get", {"sn": sn}))
    if which not in quick:
        raise ops.OpError("invalid", "unknown action", 422)
    name, label = quick[which]
    params = {}
    if name == "settime":
        terminal = await ops.call(core(), "terminal.get", {"sn": sn})
        from .attendance import zone

        params["cloudtime"] = datetime.now(zone(terminal["effective_tz"])).strftime("%Y-%m-%d %H:%M:%S")
    command = await ops.call(core(), "terminal.command", {"sn": sn, "command": name, "params": params,
                                                          "actor": actor()})
    notice("ok", f"{label}: command {command['command_id']} queued.")
    return go(f"/terminals/{sn}#commands")


def _attendance_args() -> dict[str, str]:
    return {k: (request.args.get(k) or "").strip()[:64] for k in ("from", "to", "sn", "enrollid")}


def _query(args: dict[str, str]) -> dict[str, object]:
    query: dict[str, object] = {"start": args["from"] or None, "end": args["to"] or None, "sn": args["sn"] or None}
    if args["enrollid"]:
        query["enrollid"] = args["enrollid"]
    return query


@blueprint.get("/attendance")
@page
async def attendance():
    if not _available():
        return await render("unavailable.html", active="attendance", what="Attendance")
    args = _attendance_args()
    error = None
    rows: list[dict] = []
    more = False
    seq = core().state.seq  # punches after this arrive live; the list below has every one before it
    try:
        result = await ops.call(core(), "attendance.list", {**_query(args), "limit": ATTENDANCE_ROWS,
                                                            "newest_first": True})
        rows, more = _named(result["punches"]), result["next_after"] is not None
    except ops.OpError as exc:
        error = exc.message
    terminals = sorted((t["sn"], t["name"]) for t in await ops.call(core(), "terminal.list", {}))
    filters = {k: v for k, v in args.items() if v}
    csv_url = "/attendance.csv?" + urlencode(filters)
    return await render("attendance.html", 422 if error else 200, active="attendance", rows=rows, more=more,
                        filters=args, error=error, terminals=terminals, csv_url=csv_url.rstrip("?"),
                        limit=ATTENDANCE_ROWS, seq=seq, last_id=max((r["id"] for r in rows), default=0),
                        live_url="" if error else ("/attendance/rows?" + urlencode(filters)).rstrip("?"))


@blueprint.get("/attendance/rows")
@page
async def attendance_rows():
    """The punches stored after `after` (a punch id) that match the page's filters, as table rows
    (oldest first): what the attendance page adds at the top when punches arrive."""
    args = _attendance_args()
    try:
        after = max(0, int(request.args.get("after", "0")))
    except ValueError:
        raise ops.OpError("invalid", "after must be a punch id", 422) from None
    result = await ops.call(core(), "attendance.list", {**_query(args), "after": after, "limit": LIVE_ROWS})
    rows = _named(result["punches"])
    html = await render_template("punch_rows.html", rows=rows, flash=True)
    return {"html": html, "last_id": max((r["id"] for r in rows), default=after),
            "more": result["next_after"] is not None}


def _named(rows: list[dict]) -> list[dict]:
    """Punch rows with the person's name from the terminal's user list and the terminal's name."""
    people = person_names(core())
    terminals = core().state.terminals
    for row in rows:
        row["person"] = people(row["sn"]).get(str(row["enrollid"]))
        terminal = terminals.get(row["sn"])
        row["terminal_name"] = terminal["name"] if terminal is not None else None
    return rows


@blueprint.get("/attendance.csv")
@page
async def attendance_csv():
    args = _attendance_args()
    text = await ops.call(core(), "attendance.export", {**_query(args), "format": "csv"})
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    response = Response(text, content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="attendance-{stamp}.csv"'
    return response

"""The operators' dashboard: server-rendered pages (templates in gatewayd/web/templates), the
static files they use, login and logout, and what every page shares.

Every route needs a logged-in dashboard session except `/login` and `/static/*`. Pages answer a
missing session with a redirect to the login page; form handlers (POST) answer it with 401 and
refuse a missing or wrong CSRF token, or a foreign Origin, with 403. The pages only call the same
operations the REST API and the command line run. The page modules register their routes on the
blueprint defined here (imported at the bottom).
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import unicodedata
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from quart import Blueprint, Response, current_app, g, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from .. import __version__
from ..journal.writer import JournalUnavailable
from ..ops import OpError
from .auth import client_address
from .handover import Handover
from .sessions import COOKIE_NAME, CSRF_FIELD, CSRF_HEADER, LoginRefused, same_origin

log = logging.getLogger("gatewayd.dashboard")

WEB = Path(__file__).resolve().parent.parent / "web"
NOTICE_COOKIE = "gatewayd_notice"
# Never handed back to a form after a refusal: passwords, and the form's own token.
UNKEPT_FIELDS = frozenset({"password", "current", "new", "confirm", CSRF_FIELD})
MAX_KEPT_CHARS = 20_000
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

blueprint = Blueprint("dashboard", __name__, template_folder=str(WEB / "templates"))


# -- static files ----------------------------------------------------------------------------------
def _load_static() -> dict[str, tuple[bytes, str]]:
    files = {}
    folder = WEB / "static"
    # Our own files, and one level of folders (vendor/: libraries fetched by packaging/vendor.sh).
    for path in sorted([*folder.glob("*"), *folder.glob("*/*")]):
        if path.is_file():
            kind = mimetypes.guess_type(path.name)[0] or "text/plain"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            files[path.relative_to(folder).as_posix()] = (path.read_bytes(), kind)
    return files


STATIC = _load_static()
ASSET_VERSION = hashlib.sha256(b"".join(body for body, _ in STATIC.values()) + __version__.encode()).hexdigest()[:10]


@blueprint.get("/static/<path:name>")
async def static_file(name: str):
    entry = STATIC.get(name)
    if entry is None:
        return Response("not found", status=404, content_type="text/plain; charset=utf-8")
    body, kind = entry
    response = Response(body, content_type=kind)
    # Pages link assets with ?v=<hash of every asset>, so a new release is fetched at once.
    response.headers["Cache-Control"] = "public, max-age=86400" if request.args.get("v") else "no-cache"
    return response


@blueprint.app_template_filter("dash_time")
def dash_time(ts: Any) -> str:
    """A journal time (2026-06-12T10:00:00.123456Z) as '2026-06-12 10:00:00 UTC'; scripts show local time."""
    if not isinstance(ts, str) or len(ts) < 19:
        return "" if ts is None else str(ts)
    return ts[:10] + " " + ts[11:19] + " UTC"


# -- shared helpers ----------------------------------------------------------------------------------
def core():
    return current_app.config["CORE"]


def sessions():
    return core().extras["sessions"]


def actor() -> str:
    return f"session:{g.session.user}"


def secure() -> bool:
    return request.scheme == "https"


def notice(kind: str, text: str) -> None:
    """A message for the next page this browser shows (kind: "ok" | "error")."""
    g.setdefault("notices", []).append([kind, text[:500]])


def _take_notices() -> list[list[str]]:
    raw = sessions().unsign(request.cookies.get(NOTICE_COOKIE))
    if raw is None:
        return []
    g.clear_notices = True
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    return [i for i in items if isinstance(i, list) and len(i) == 2 and all(isinstance(x, str) for x in i)][:5]


def subject_names() -> dict[str, dict[str, str]]:
    """Names of devices, terminals and gateways by id (and LoRaWAN DevEUIs -> device id), for the
    pages that show streams: they print names and keep the id for the tooltip."""
    parts = core().state.parts
    devices, terminals, lorawan = parts.get("devices"), parts.get("terminals"), parts.get("lorawan")
    return {
        "devices": {i: str(d.get("name") or i) for i, d in (devices.devices.items() if devices else ())},
        "terminals": {sn: str(t.get("name") or sn) for sn, t in (terminals.terminals.items() if terminals else ())},
        "gateways": {eui: str(g.get("name") or eui) for eui, g in (lorawan.gateways.items() if lorawan else ())},
        "euis": {eui: str(s.get("device_id")) for eui, s in (lorawan.devices.items() if lorawan else ())
                 if s.get("device_id")},
    }


def field_error(field: str, message: str, status: int = 422) -> OpError:
    """A refusal that belongs to one field of a form: the page shows it next to that field."""
    return OpError("invalid", message, status, field=field)


def _handover() -> Handover:
    return core().extras.setdefault("handover", Handover())


def hand_over(slot: str, value: Any, size: int = 1024) -> None:
    """Give the page this browser is sent to next something to show once (see handover.py);
    `size`: about how many bytes it holds, when that can be large."""
    _handover().put(g.session.sid, slot, value, size)


def take_over(slot: str) -> Any | None:
    session = g.get("session")
    return None if session is None else _handover().take(session.sid, slot)


def take_shown_once(slot: str, what: str, then: str) -> Any:
    """A secret handed over by a form (hand_over), or the 410 page: it was shown already."""
    value = take_over(slot)
    if value is None:
        raise OpError("gone", f"{what} is shown once, right after it is made, and this one has been shown "
                              f"already. {then}", 410)
    return value


def _keep_form(back: str, exc: OpError) -> None:
    field = exc.field if exc.field in g.form else None  # a field this form has, so the page shows it
    values = {k: v[:MAX_KEPT_CHARS] for k, v in g.form.items() if k not in UNKEPT_FIELDS and isinstance(v, str)}
    hand_over("form:" + urlsplit(back).path, {"action": request.path, "input": values,
                                              "errors": {field: exc.message} if field else {}})
    if field is None:
        notice("error", exc.message)


async def render(template: str, status: int = 200, **context: Any) -> Response:
    session = g.get("session")
    context.setdefault("active", "")
    if "form" not in context:
        # The values and field errors of this page's form, refused a moment ago (POST-redirect-GET).
        context["form"] = take_over("form:" + request.path) or {"action": "", "input": {}, "errors": {}}
    body = await render_template(
        template, user=session.user if session is not None and session.user else None,
        csrf=sessions().csrf_token(session) if session is not None else "", csrf_field=CSRF_FIELD,
        notices=_take_notices() + g.get("notices", []), asset_version=ASSET_VERSION, version=__version__,
        after_post=request.method == "POST", **context)
    g.notices = []
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def back_to(url: str) -> None:
    """Where a form handler sends the browser after an error it can explain: the form's values
    (but passwords) and the error go with it, next to the field for a FieldError."""
    g.back = url


def go(url: str) -> Response:
    return redirect(url, 303)


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, else "/". Refused: a scheme or an authority, a
    backslash, and any control, format or space character (browsers drop tabs and newlines from
    URLs, so "/\t/evil.example" would lead off-site, and CR/LF cannot go into a header)."""
    if not isinstance(target, str) or not target.startswith("/") or len(target) > 2048 or "\\" in target:
        return "/"
    if any(unicodedata.category(ch)[0] in "CZ" for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return "/"
    return target


async def form_value(name: str, default: str = "") -> str:
    value = g.form.get(name, default)
    return value if isinstance(value, str) else default


# -- guards -------------------------------------------------------------------------------------------
def page(handler):
    """A page: needs a logged-in session, else a redirect to the login page."""

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any):
        session = sessions().current(request)
        if session is None or not session.user:
            target = request.full_path.rstrip("?")
            return go(f"/login?next={quote(target, safe='/')}")
        g.session = session
        return await handler(*args, **kwargs)

    return wrapper


def action(handler):
    """A form handler: needs a logged-in session and its CSRF token (form field or header) from
    this server's own pages. OpError goes back (see back_to) with the message shown."""

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any):
        session = sessions().current(request)
        if session is None or not session.user:
            return await _refusal(401, "Your session has ended", "Log in again, then repeat what you did.")
        g.session = session
        g.form = await request.form
        token = g.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        if not same_origin(request) or not sessions().csrf_valid(session, token):
            return await _refusal(403, "This form is out of date",
                                  "The request did not carry this page's security token. "
                                  "Reload the page and try again.")
        try:
            return await handler(*args, **kwargs)
        except OpError as exc:
            if g.get("back"):
                _keep_form(g.back, exc)
                return go(g.back)
            raise

    return wrapper


async def _refusal(status: int, title: str, message: str) -> Response:
    return await render("error.html", status, title=title, message=message,
                        login=status == 401)


# -- responses and errors --------------------------------------------------------------------------
@blueprint.after_request
async def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type and response.content_type.startswith("text/html"):
        response.headers["Cache-Control"] = "no-store"
    notices = g.get("notices")
    if notices:
        value = sessions().sign(json.dumps(notices))
        response.set_cookie(NOTICE_COOKIE, value, max_age=120, path="/", httponly=True, samesite="Strict",
                            secure=secure())
    elif g.get("clear_notices"):
        response.delete_cookie(NOTICE_COOKIE, path="/", httponly=True, samesite="Strict", secure=secure())
    return response


@blueprint.errorhandler(OpError)
async def _op_error(exc: OpError):
    titles = {404: "Not found", 409: "Not possible right now", 422: "Not accepted"}
    return await render("error.html", exc.status, title=titles.get(exc.status, "Refused"), message=exc.message)


@blueprint.errorhandler(JournalUnavailable)
async def _journal_error(exc: JournalUnavailable):
    response = await render("error.html", 503, title="Cannot store changes right now",
                            message="The journal cannot write at the moment. Nothing was changed; "
                                    "try again in a few seconds.")
    response.headers["Retry-After"] = "5"
    return response


@blueprint.errorhandler(HTTPException)
async def _http_error(exc: HTTPException):
    return await render("error.html", exc.code or 500, title=exc.name, message=exc.description or exc.name)


@blueprint.errorhandler(Exception)
async def _unexpected(exc: Exception):
    log.exception("dashboard: unexpected error on %s %s", request.method, request.path)
    return await render("error.html", 500, title="Something went wrong",
                        message="The server could not show this page. The details are in the server log.")


# -- entry, login, logout --------------------------------------------------------------------------------
@blueprint.get("/")
async def root():
    session = sessions().current(request)
    return go("/devices" if session is not None and session.user else "/login")


@blueprint.get("/login")
async def login_form():
    store = sessions()
    session = store.current(request)
    next_url = safe_next(request.args.get("next"))
    if session is not None and session.user:
        return go(next_url)
    if session is None:
        session = store.new_session()
    g.session = session
    response = await render("login.html", next=next_url, username="admin")
    if session.fresh:
        store.set_cookie(response, session, secure=secure())
    return response


@blueprint.post("/login")
async def login_submit():
    store = sessions()
    form = await request.form
    next_url = safe_next(form.get("next"))
    username = form.get("username", "")[:64]
    session = store.current(request)
    g.session = session
    if not same_origin(request) or not store.csrf_valid(session, form.get(CSRF_FIELD)):
        g.session = store.new_session()
        response = await render("login.html", 403, next=next_url, username=username,
                                error="The login form had expired. Please try again.")
        store.set_cookie(response, g.session, secure=secure())
        return response
    try:
        new = await store.login(username, form.get("password", ""), client_address())
    except LoginRefused as exc:
        return await render("login.html", exc.status, next=next_url, username=username, error=exc.message)
    response = go(next_url)
    store.set_cookie(response, new, secure=secure())
    return response


@blueprint.post("/logout")
@action
async def logout():
    await sessions().revoke(g.session)
    g.session = None
    response = go("/login")
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict", secure=secure())
    return response


def pages(name: str, import_name: str) -> Blueprint:
    """A blueprint for more dashboard pages (a connector's): the shell's templates, headers and
    error pages apply to them as to the shell's own."""
    bp = Blueprint(name, import_name, template_folder=str(WEB / "templates"))
    bp.after_request(_headers)
    for exc_class, handler in ((OpError, _op_error), (JournalUnavailable, _journal_error),
                               (HTTPException, _http_error), (Exception, _unexpected)):
        bp.register_error_handler(exc_class, handler)
    return bp

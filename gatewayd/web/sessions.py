"""Dashboard sessions: signed cookies, CSRF tokens, and the login itself.

A session lives entirely in its cookie: `<payload>.<mac>`, where the payload is base64url JSON
{sid, u (user, "" before login), exp, pw} and the mac an HMAC-SHA256 under a random key kept in
`<state_dir>/session.key` (mode 0600). `pw` is a fingerprint of the admin password hash, so
changing the password ends every session. Logging out journals `auth.logout` with a hash of the
session id: the cookie stays refused until it expires, across restarts too.

The CSRF token of a session is an HMAC of its id: forms carry it as `csrf_token`, scripts send it
as the `X-CSRF-Token` header. Cookies are HttpOnly and SameSite=Strict; WebSocket handshakes must
also come from this server's own origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from ..secrets_ import KEY_BYTES, load_or_create_key  # noqa: F401 - KEY_BYTES is part of this module's interface

log = logging.getLogger("gatewayd.sessions")

COOKIE_NAME = "gatewayd_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
ADMIN_USER = "admin"
MAX_COOKIE_CHARS = 1024
ANONYMOUS_SECONDS = 3600.0  # a login form's pre-session
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Session:
    __slots__ = ("sid", "user", "exp", "fresh")

    def __init__(self, sid: str, user: str, exp: float, fresh: bool = False):
        self.sid = sid
        self.user = user
        self.exp = exp
        self.fresh = fresh  # made by this request: the response must set the cookie


class LoginRefused(Exception):
    """A refused login; `status` 401 (bad credentials) or 429 (too many failures)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


class Sessions:
    def __init__(self, core, clock=time.time):
        self.core = core
        self.clock = clock
        self._key: bytes | None = None
        core.extras["sessions"] = self

    # -- key ----------------------------------------------------------------------------------------
    @property
    def key_path(self) -> Path:
        return self.core.settings.state_path / "session.key"

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = load_or_create_key(self.key_path)
        return self._key

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.key  # noqa: B018 - made (or read) before the first request, so a bad state dir stops the start
        task_status.started()

    # -- cookies ------------------------------------------------------------------------------------
    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())

    def _password_mark(self) -> str:
        stored = self.core.state.access.admin_hash or ""
        return hashlib.sha256(("session|" + stored).encode()).hexdigest()[:16]

    def encode(self, session: Session) -> str:
        body = json.dumps({"sid": session.sid, "u": session.user, "exp": int(session.exp),
                           "pw": self._password_mark()}, separators=(",", ":"))
        payload = _b64(body.encode())
        return f"{payload}.{self._mac(payload)}"

    def decode(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None when it is forged, expired, revoked or stale."""
        if not cookie or len(cookie) > MAX_COOKIE_CHARS or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            data = json.loads(_unb64(payload))
            sid, user, exp, mark = data["sid"], data["u"], float(data["exp"]), data["pw"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(sid, str) or not isinstance(user, str) or exp <= self.clock():
            return None
        if mark != self._password_mark() or sid_hash(sid) in self.core.state.access.revoked_sessions:
            return None
        return Session(sid, user, exp)

    def new_session(self, user: str = "") -> Session:
        lifetime = self.core.settings.security.session_hours * 3600 if user else ANONYMOUS_SECONDS
        return Session(secrets.token_urlsafe(18), user, self.clock() + lifetime, fresh=True)

    def current(self, ctx) -> Session | None:
        return self.decode(ctx.cookies.get(COOKIE_NAME))

    def user_from(self, ctx) -> str | None:
        """The logged-in user behind a request or WebSocket handshake (transports/auth.identify)."""
        session = self.current(ctx)
        if session is None or not session.user:
            return None
        if _is_websocket(ctx) and not same_origin(ctx):
            return None  # a page of another site opening a socket with our cookie
        return session.user

    def set_cookie(self, response, session: Session, *, secure: bool) -> None:
        response.set_cookie(COOKIE_NAME, self.encode(session), max_age=max(0, int(session.exp - self.clock())),
                            path="/", httponly=True, samesite="Strict", secure=secure)

    @staticmethod
    def clear_cookie(response, *, secure: bool) -> None:
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict", secure=secure)

    async def revoke(self, session: Session) -> None:
        """Log a session out for good (durable: refused after a restart too)."""
        await self.core.hub.publish("auth.logout", {"sid_hash": sid_hash(session.sid), "exp": int(session.exp),
                                                    "user": session.user})

    def sign(self, text: str) -> str:
        """`text` with a MAC (for small values the dashboard keeps in cookies, e.g. notices)."""
        payload = _b64(text.encode())
        return f"{payload}.{self._mac('note|' + payload)}"

    def unsign(self, value: str | None) -> str | None:
        if not value or len(value) > 4 * MAX_COOKIE_CHARS or value.count(".") != 1:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac("note|" + payload).encode()):
            return None
        try:
            return _unb64(payload).decode()
        except (ValueError, UnicodeDecodeError):
            return None

    # -- CSRF ---------------------------------------------------------------------------------------
    def csrf_token(self, session: Session) -> str:
        return _b64(hmac.new(self.key, b"csrf|" + session.sid.encode(), hashlib.sha256).digest())

    def csrf_valid(self, session: Session | None, token: Any) -> bool:
        if session is None or not isinstance(token, str) or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(session).encode())

    def csrf_ok(self, request) -> bool:
        """For cookie-authenticated REST calls: safe methods pass; others need the header token
        (a form field is read by the dashboard's own handlers) and, if sent, a same-site Origin."""
        if request.method in SAFE_METHODS:
            return True
        if not same_origin(request):
            return False
        return self.csrf_valid(self.current(request), request.headers.get(CSRF_HEADER))

    # -- login --------------------------------------------------------------------------------------
    async def login(self, user: Any, password: Any, source: str) -> Session:
        """A new logged-in session, or LoginRefused. Each attempt counts as a failure per source
        address and per user name before the password is hashed (so concurrent attempts see each
        other), at most `security.max_concurrent_password_checks` hashes run at once, and success
        clears the count. Failures are journaled (`auth.failed`, with a salted hash of the user
        name), success as `auth.login`."""
        access = self.core.access
        user = user.strip() if isinstance(user, str) else ""
        password = password if isinstance(password, str) else ""
        user_key = access.subject_hash("user", user)
        if access.blocked("login", source) or access.blocked("login_user", user_key):
            raise LoginRefused("Too many failed logins. Wait a minute and try again.", 429)
        access.count_attempt("login", source)
        access.count_attempt("login_user", user_key)
        ok = False
        if user == ADMIN_USER and 0 < len(password) <= 1024:
            ok = await access.check_password_limited(password)
            if ok is None:
                raise LoginRefused("The server is busy checking other logins. Try again in a few seconds.", 503)
        if not ok:
            await access.record_failure("login", source, user_hash=user_key, counted=True)
            raise LoginRefused("Wrong user name or password.", 401)
        access.limiter.succeeded(f"login:{source}")
        access.user_limiter.succeeded(f"login_user:{user_key}")
        await self.core.hub.publish("auth.login", {"user": user, "source": source})
        return self.new_session(user)


def sid_hash(sid: str) -> str:
    """What the journal and the state hold of a session id (the id itself is part of a cookie)."""
    return hashlib.sha256(("sid|" + sid).encode()).hexdigest()[:32]


def _is_websocket(ctx) -> bool:
    return getattr(ctx, "scheme", "") in ("ws", "wss") or ctx.headers.get("Upgrade", "").lower() == "websocket"


def same_origin(ctx) -> bool:
    """True when the Origin header is absent or names the host the request was sent to."""
    origin = ctx.headers.get("Origin")
    if origin is None:
        return True
    host = ctx.headers.get("Host", "")
    try:
        return bool(host) and urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:
        return False

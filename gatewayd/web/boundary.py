"""Error boundaries: an exception while serving one TCP connection ends that connection only.

Two layers, because errors come from two places:

- `ErrorBoundary` wraps the whole ASGI application hypercorn serves. An exception raised by a
  route, by the framework, or by hypercorn's `send` called from the application (HTTP or
  WebSocket alike) is logged (rate-limited, with the peer), counted in
  `gatewayd_connection_errors_total{layer="app"}`, and swallowed: hypercorn then answers 500 or
  closes the WebSocket with 1011, as it does when an application returns without a response.

- Some errors never pass through the application: hypercorn 0.18's protocol code raises on
  hostile byte sequences (h11's LocalProtocolError when a WebSocket upgrade request is followed by
  data before the handshake is answered; trio's BusyResourceError when its ping task writes while
  the connection is being shut down). They leave hypercorn's per-connection task `TCPServer.run`,
  reach the server nursery and, through it, the daemon's root nursery: one request would end the
  process. `install()` therefore replaces the `TCPServer` class that hypercorn's trio worker
  instantiates for each accepted connection (the module global `hypercorn.trio.run.TCPServer`)
  by `GuardedTCPServer`, a subclass whose `run` catches what escapes the parent's `run`, reports
  it (`layer="connection"`) and closes the socket. The patch is process-wide, idempotent and
  carries no state: each connection finds the boundary through the application it serves.
  `install()` refuses to start the daemon if hypercorn no longer has that seam. The same class
  shields the close of a connection from a cancellation of the task that ends it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import trio

from ..logs import RateLimitedLogger

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

log = logging.getLogger("gatewayd.boundary")

METRIC = "gatewayd_connection_errors_total"
CLOSE_TIMEOUT = 1.0


def split_cancelled(exc: BaseException) -> tuple[BaseException | None, BaseException | None]:
    """(the cancellation part, the error part) of an exception or exception group."""
    if isinstance(exc, trio.Cancelled):
        return exc, None
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)
    return None, exc


def peer_text(client: Any) -> str:
    if isinstance(client, (tuple, list)) and len(client) >= 2:
        host, port = client[0], client[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "unknown peer"


class ConnectionErrors:
    """Logs (once per minute per kind of error, with the count of the rest) and counts."""

    def __init__(self, metrics) -> None:
        self.metrics = metrics
        self._rlog = RateLimitedLogger(log, 60.0)
        metrics.describe(METRIC, "Exceptions that ended one connection (the daemon went on), by layer.")

    def report(self, layer: str, kind: str, peer: str, error: BaseException) -> None:
        self.metrics.inc(METRIC, layer=layer, kind=kind)
        leaf = _first_leaf(error)
        self._rlog.error(f"{layer}:{kind}:{type(leaf).__name__}", "%s %s from %s ended by %s: %s",
                         kind, layer, peer, type(leaf).__name__, str(leaf)[:200], exc_info=error)


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


class ErrorBoundary:
    """ASGI middleware around the whole application (see the module docstring)."""

    def __init__(self, app, errors: ConnectionErrors) -> None:
        self.app = app
        self.errors = errors

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            cancelled, error = split_cancelled(exc)
            if error is not None and not isinstance(error, Exception):
                raise  # KeyboardInterrupt, SystemExit: not ours to swallow
            if error is not None:
                self.errors.report("app", scope["type"], peer_text(scope.get("client")), error)
            if cancelled is not None:
                raise cancelled from None


def _stream_peer(stream) -> str:
    sock = getattr(stream, "socket", None) or getattr(getattr(stream, "transport_stream", None), "socket", None)
    try:
        return peer_text(sock.getpeername())
    except (OSError, AttributeError):
        return "unknown peer"


def _boundary_of(app) -> ErrorBoundary | None:
    """The ErrorBoundary inside hypercorn's application wrapper, if any."""
    while app is not None:
        if isinstance(app, ErrorBoundary):
            return app
        app = getattr(app, "app", None)
    return None


def install() -> None:
    """Make hypercorn's trio worker serve each connection through GuardedTCPServer."""
    from hypercorn.trio import run as hypercorn_run
    from hypercorn.trio.tcp_server import TCPServer

    current = getattr(hypercorn_run, "TCPServer", None)
    if current is GuardedTCPServer:
        return
    if current is not TCPServer:
        raise RuntimeError("hypercorn.trio.run.TCPServer is not hypercorn's TCPServer: the per-connection "
                           "error boundary cannot be installed (see gatewayd/web/boundary.py)")
    hypercorn_run.TCPServer = GuardedTCPServer


def _guarded_server_class():
    from hypercorn.trio.tcp_server import TCPServer

    class GuardedTCPServer(TCPServer):
        """hypercorn's per-connection task, with an error boundary around it."""

        async def run(self) -> None:
            peer = _stream_peer(self.stream)  # now: once the error struck, the socket may be gone
            try:
                await super().run()
            except BaseException as exc:
                cancelled, error = split_cancelled(exc)
                if error is not None and not isinstance(error, Exception):
                    raise
                if error is not None:
                    boundary = _boundary_of(self.app)
                    if boundary is not None:
                        boundary.errors.report("connection", "tcp", peer, error)
                    else:
                        log.error("connection from %s ended by an error", peer, exc_info=error)
                    await self._close_quietly()
                if cancelled is not None:
                    raise cancelled from None

        async def _close(self) -> None:
            # hypercorn closes the socket from whichever task ends the connection, often the
            # application's own after its response (a request whose body never completed, a
            # `Connection: close`). The framework may have cancelled that task's scope already
            # (quart-trio does once the disconnect arrives), and the close would then stop at
            # its first checkpoint and leave the socket open with only a read waiting on it (the
            # server has no read timeout: see gatewayd/daemon.py). So the close is shielded.
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await super()._close()

        async def _close_quietly(self) -> None:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                try:
                    await self.stream.aclose()
                except Exception:  # already broken: nothing left to close
                    pass

    return GuardedTCPServer


GuardedTCPServer = _guarded_server_class()

"""The root nursery: journal writer, web server, control socket, background services, signals."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from functools import partial
from typing import Sequence

import trio
from hypercorn.config import Config as HypercornConfig, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from . import __version__, config as config_mod, control
from .config import Settings
from .connector import Connector
from .gctune import collect_periodically, share_one_heap, tune_for_daemon
from .journal.writer import JournalUnavailable
from .logs import setup_logging
from .runtime import open_core
from .sdnotify import Notifier, listen_fds, watchdog_interval
from .web import boundary
from .web.app import create_app
from .web.proxy import ProxyHeaders, parse_networks

log = logging.getLogger("gatewayd")

def _dead_peer_timeouts(sock: socket.socket, seconds: float) -> None:
    """Accepted connections inherit these: data a peer does not acknowledge (it vanished, or it
    stopped reading and left a zero window) for `seconds` ends its connection, and idle ones are
    probed. hypercorn's sends cannot be timed out from above, so this is what frees a stalled one."""
    if seconds <= 0 or not hasattr(socket, "TCP_USER_TIMEOUT"):
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(seconds * 1000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, int(seconds)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, int(seconds / 3)))
    except OSError as exc:
        log.warning("cannot set TCP timeouts on the listening socket: %s", exc)


def _cut_connections(port: int) -> int:
    """shutdown() every TCP connection this process accepted on `port` (Linux: found through
    /proc/self/fd). A send blocked on a full window then fails at once instead of after
    server.tcp_user_timeout. Returns how many were cut."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return 0
    cut = 0
    for fd in fds:
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM \
                    and sock.getsockname()[1] == port:
                sock.getpeername()  # the listening socket has no peer: OSError, skipped
                sock.shutdown(socket.SHUT_RDWR)
                cut += 1
        except OSError:
            pass
        finally:
            sock.close()  # closes the duplicate only
    return cut


def _tune_for_dead_peers(sock: socket.socket, settings: Settings) -> None:
    """Accepted sockets inherit these (Linux): unacknowledged data and silent peers are cut in time.

    hypercorn's sends cannot be timed out from outside, so a peer that vanished without a FIN
    must be detected by the kernel."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3),
                          ("TCP_USER_TIMEOUT", int(settings.server.tcp_user_timeout * 1000))):
        if hasattr(socket, option) and value > 0:
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


LISTEN_BACKLOG = 4096


def _listen_socket(settings: Settings) -> socket.socket:
    inherited = listen_fds()
    for sock in inherited:
        if sock.type == socket.SOCK_STREAM:
            log.info("using the listening socket passed by systemd (%s)", sock.getsockname())
            sock.setblocking(False)
            _dead_peer_timeouts(sock, settings.server.tcp_user_timeout)
            return sock
    host = settings.server.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    _dead_peer_timeouts(sock, settings.server.tcp_user_timeout)
    sock.bind((host, settings.server.port))
    _tune_for_dead_peers(sock, settings)
    # Room for a reconnect storm: a connection beyond the backlog loses its SYN and retries only
    # after 1, 3, 7, 15 ... s. (The kernel caps it at net.core.somaxconn, 4096 on current kernels.)
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


def _hypercorn_config(settings: Settings) -> HypercornConfig:
    cfg = HypercornConfig()
    cfg.graceful_timeout = settings.server.graceful_timeout
    cfg.websocket_max_message_size = settings.devices.max_frame_bytes
    cfg.h11_max_incomplete_size = 16 * 1024
    # Requests whose headers do not complete within keep_alive_timeout are cut (slowloris), and
    # bodies are the application's (BODY_TIMEOUT, gatewayd/web/app.py). No read_timeout: it would
    # also cut WebSockets that only listen, and keeping those within it took a ping task per
    # connection (3 KB each). Dead peers are found by the kernel instead (keep-alive and
    # TCP_USER_TIMEOUT on the listening socket, inherited by every accepted one); silent ones by
    # each WebSocket's own heartbeat, or the shared pings of ConnectionSet.ping_periodically.
    cfg.keep_alive_timeout = 75
    cfg.read_timeout = None
    cfg.websocket_ping_interval = None
    cfg.accesslog = None
    cfg.errorlog = logging.getLogger("hypercorn.error")
    if settings.server.certfile:
        cfg.certfile = settings.server.certfile
        cfg.keyfile = settings.server.keyfile
    return cfg


def _hypercorn_sockets(settings: Settings, sock: socket.socket) -> Sockets:
    """With server.certfile/keyfile the one port speaks TLS only (HTTPS, WSS)."""
    if settings.server.certfile:
        return Sockets([sock], [], [])
    return Sockets([], [sock], [])


def _write_runfile(settings: Settings, port: int, udp_port: int | None) -> None:
    path = settings.state_path / "run.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "http_port": port, "udp_port": udp_port,
                               "host": settings.server.host}))
    os.replace(tmp, path)


INITIAL_PASSWORD_FILE = "initial-admin-password"


def _hand_over_initial_password(settings: Settings, password: str) -> None:
    """The generated first password goes to a file only this user can read, never into the log
    (under systemd the log is kept, and readable by the adm group)."""
    path = settings.state_path / INITIAL_PASSWORD_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, password.encode() + b"\n")
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("first start: cannot write the admin password to %s (%s); set one with "
                  "`gatewayd admin set-password`", path, exc.strerror or exc)
        return
    log.warning("first start: the dashboard login is admin with the password in %s (readable by this user "
                "only; delete it once read, or change the password with `gatewayd admin set-password`)", path)


async def _signals(core, reload, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        task_status.started()
        async for signum in signals:
            if signum == signal.SIGHUP:
                await reload()
            else:
                log.info("received %s: stopping", signal.Signals(signum).name)
                core.stopping.set()
                return


async def _watchdog(core, notifier: Notifier, period: float) -> None:
    """WATCHDOG=1 only while the event loop runs and the journal writer is not stuck."""
    while True:
        await trio.sleep(period)
        writer = core.writer
        stuck = writer.pending_bytes > 0 and time.monotonic() - writer.last_progress > 2 * period
        if not stuck:
            notifier.watchdog()
        else:
            log.error("journal writer made no progress for %.1f s; withholding the watchdog ping",
                      time.monotonic() - writer.last_progress)


async def serve(settings: Settings, config_path: str | None = None, overrides: dict | None = None,
                *, connectors: Sequence[Connector], handle_signals: bool = True, tune_gc: bool = False,
                task_status=trio.TASK_STATUS_IGNORED) -> int:
    """Run until SIGTERM/SIGINT (or `core.stopping` is set). `task_status` receives the Core once
    every port is bound (tests run the daemon in-process this way). `tune_gc` (the daemon process
    sets it; in-process tests do not) sets the garbage collector up for a long-running process
    once start-up is over."""
    notifier = Notifier.from_environ()
    if tune_gc:
        share_one_heap()
    async with open_core(settings, online=True, connectors=connectors) as core:
        password = await core.access.ensure_admin()
        if password is not None:
            _hand_over_initial_password(settings, password)

        async def reload() -> None:
            try:
                new = config_mod.load(config_path, overrides)
            except config_mod.ConfigError as exc:
                log.error("reload refused: %s", exc)
                return
            live, restart = config_mod.reload_changes(core.settings, new)
            config_mod.apply_reload(core.settings, new)
            setup_logging(core.settings.log.level)
            if restart:
                log.warning("reload: these changes need a restart and were not applied: %s", ", ".join(restart))
            log.info("configuration reloaded (%s)", ", ".join(live) or "no live changes")
            await core.hub.publish("config.reloaded", {"applied": live, "needs_restart": restart}, durable=False)

        core.extras["web_app"] = web_app = create_app(core)
        trusted = parse_networks(settings.server.trusted_proxies)
        # Quart's __call__ only forwards to asgi_app (the WebSocket front included): calling that
        # directly spares every connection one coroutine frame held for its whole life.
        web_asgi = web_app.asgi_app
        app = boundary.ErrorBoundary(ProxyHeaders(web_asgi, trusted) if trusted else web_asgi,
                                     boundary.ConnectionErrors(core.metrics))
        boundary.install()
        sock = _listen_socket(settings)
        port = sock.getsockname()[1]
        shutdown = trio.Event()
        trio.lowlevel.add_instrument(core.loop_load)
        try:
            async with trio.open_nursery() as nursery:
                core.nursery = nursery
                for service in core.services.values():
                    if hasattr(service, "run"):
                        await nursery.start(service.run)
                await nursery.start(control.serve, core)
                await nursery.start(core.connections.ping_periodically)
                await nursery.start(partial(
                    worker_serve, wrap_app(app, 16 * 1024 * 1024, None), _hypercorn_config(settings),
                    sockets=_hypercorn_sockets(settings, sock), shutdown_trigger=shutdown.wait))
                if handle_signals:
                    # Before anything announces readiness: an early SIGHUP must reload, not kill us.
                    await nursery.start(_signals, core, reload)
                udp_port = core.extras.get("udp_port")
                # A full disk must not stop the start: the daemon then runs degraded (clients get
                # retryable errors, /healthz says 503) and recovers by itself once writes succeed.
                try:
                    _write_runfile(settings, port, udp_port)
                except OSError as exc:
                    log.error("cannot write %s: %s", settings.state_path / "run.json", exc.strerror or exc)
                try:
                    await core.hub.publish("server.started", {"version": __version__, "pid": os.getpid(),
                                                              "http_port": port, "udp_port": udp_port})
                except JournalUnavailable as exc:
                    log.error("starting with a journal that cannot write (%s); no device is acknowledged "
                              "until writes succeed", exc)
                core.http_port = port
                if tune_gc:
                    tune_for_daemon()
                    nursery.start_soon(collect_periodically)
                log.info("gatewayd %s listening on %s://%s:%d", __version__, "https" if settings.server.certfile else "http",
                         settings.server.host, port)
                notifier.ready()
                task_status.started(core)
                notifier.status(f"listening on port {port}")
                period = watchdog_interval()
                if period:
                    nursery.start_soon(_watchdog, core, notifier, period)
                core.extras["reload"] = reload

                await core.stopping.wait()
                began = trio.current_time()
                notifier.stopping()
                shutdown.set()
                with trio.move_on_after(settings.server.graceful_timeout / 2):
                    closed = await core.connections.close_all(1001, "server going away",
                                                              settings.server.graceful_timeout / 2)
                    log.info("closed %d WebSocket connections with 1001", closed)
                # A peer that stopped reading leaves hypercorn blocked in a shielded send until the TCP
                # timeout; cut what is still connected so the stop keeps its deadline.
                stuck = _cut_connections(port)
                if stuck:
                    log.warning("cut %d connections that did not close in time (peers not reading)", stuck)
                try:
                    core.hub.publish_nowait("server.stopping", {"pid": os.getpid()})
                except Exception:  # the journal may be unwritable; stopping must go on
                    pass
                nursery.cancel_scope.deadline = began + settings.server.graceful_timeout
                await core.writer.close(timeout=1.0)
                nursery.cancel_scope.cancel()
        finally:
            trio.lowlevel.remove_instrument(core.loop_load)
    log.info("stopped")
    return 0

"""The root nursery: journal writer, web server, control socket, background services, signals."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from functools import partial

import trio
from hypercorn.config import Config as HypercornConfig, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from . import __version__, config as config_mod
from .config import Settings
from .logs import setup_logging
from .runtime import open_core
from .sdnotify import Notifier, listen_fds, watchdog_interval
from .transports import control
from .transports.web import create_app

log = logging.getLogger("gatewayd")

def _listen_socket(settings: Settings) -> socket.socket:
    inherited = listen_fds()
    for sock in inherited:
        if sock.type == socket.SOCK_STREAM:
            log.info("using the listening socket passed by systemd (%s)", sock.getsockname())
            sock.setblocking(False)
            return sock
    host = settings.server.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, settings.server.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _hypercorn_config(settings: Settings) -> HypercornConfig:
    cfg = HypercornConfig()
    cfg.graceful_timeout = settings.server.graceful_timeout
    cfg.websocket_max_message_size = settings.devices.max_frame_bytes
    cfg.h11_max_incomplete_size = 16 * 1024
    cfg.keep_alive_timeout = 75
    cfg.read_timeout = 60
    cfg.accesslog = None
    cfg.errorlog = logging.getLogger("hypercorn.error")
    if settings.server.certfile:
        cfg.certfile = settings.server.certfile
        cfg.keyfile = settings.server.keyfile
    return cfg


def _write_runfile(settings: Settings, port: int, udp_port: int | None) -> None:
    path = settings.state_path / "run.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "http_port": port, "udp_port": udp_port,
                               "host": settings.server.host}))
    os.replace(tmp, path)


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
                *, handle_signals: bool = True, task_status=trio.TASK_STATUS_IGNORED) -> int:
    """Run until SIGTERM/SIGINT (or `core.stopping` is set). `task_status` receives the Core once
    every port is bound (tests run the daemon in-process this way)."""
    notifier = Notifier.from_environ()
    async with open_core(settings, online=True) as core:
        password = await core.access.ensure_admin()
        if password is not None:
            log.warning("first start: the dashboard login is admin / %s (shown once; change it with "
                        "`gatewayd admin set-password`)", password)

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

        app = create_app(core)
        sock = _listen_socket(settings)
        port = sock.getsockname()[1]
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            core.nursery = nursery
            for service in core.services.values():
                if hasattr(service, "run"):
                    await nursery.start(service.run)
            await nursery.start(control.serve, core)
            await nursery.start(partial(
                worker_serve, wrap_app(app, 16 * 1024 * 1024, None), _hypercorn_config(settings),
                sockets=Sockets([], [sock], []), shutdown_trigger=shutdown.wait))
            if handle_signals:
                # Before anything announces readiness: an early SIGHUP must reload, not kill us.
                await nursery.start(_signals, core, reload)
            udp_port = core.extras.get("udp_port")
            _write_runfile(settings, port, udp_port)
            await core.hub.publish("server.started", {"version": __version__, "pid": os.getpid(),
                                                      "http_port": port, "udp_port": udp_port})
            core.http_port = port
            log.info("gatewayd %s listening on http://%s:%d", __version__, settings.server.host, port)
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
            try:
                core.hub.publish_nowait("server.stopping", {"pid": os.getpid()})
            except Exception:  # the journal may be unwritable; stopping must go on
                pass
            nursery.cancel_scope.deadline = began + settings.server.graceful_timeout
            await core.writer.close(timeout=1.0)
            nursery.cancel_scope.cancel()
    log.info("stopped")
    return 0

"""systemd integration: readiness/watchdog notifications and socket activation.

Both are optional: without systemd (NOTIFY_SOCKET / LISTEN_FDS unset) everything is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import MutableMapping

log = logging.getLogger(__name__)

LISTEN_FDS_START = 3


class Notifier:
    """Sends sd_notify(3) messages. Never raises: a lost notification must not stop the daemon."""

    def __init__(self, address: str | None):
        # "@name" is an abstract socket: a leading NUL byte on the wire.
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address or None
        self._sock: socket.socket | None = None
        self._failed_once = False

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> "Notifier":
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self) -> bool:
        return self.send(READY=1)

    def stopping(self) -> bool:
        return self.send(STOPPING=1)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def send(self, **fields: object) -> bool:
        """Send KEY=value lines; True when the datagram went out."""
        if self._address is None or not fields:
            return False
        # One assignment per line: a newline inside a value would start a bogus assignment.
        lines = [f"{key.upper()}={_one_line(value)}" for key, value in fields.items()]
        data = ("\n".join(lines) + "\n").encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # Never let a stuck receiver stall the event loop; a dropped ping is harmless.
                self._sock.setblocking(False)
            self._sock.sendto(data, self._address)
        except OSError as exc:
            if not self._failed_once:
                self._failed_once = True
                log.debug("sd_notify to %r failed: %s", self._address, exc)
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(value: object) -> str:
    return str(value).replace("\r", " ").replace("\n", " ")


def _pid_matches(value: str | None) -> bool:
    if value is None:
        return True
    try:
        return int(value) == os.getpid()
    except ValueError:
        return False


def watchdog_interval(environ: MutableMapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of WATCHDOG_USEC), or None when not asked for."""
    env = os.environ if environ is None else environ
    if not _pid_matches(env.get("WATCHDOG_PID")):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000 / 2


def listen_fds(environ: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """Sockets passed by systemd socket activation (fd 3 onwards), as socket objects.

    The LISTEN_* variables are removed afterwards (as sd_listen_fds does) so that a child
    process never mistakes them for its own.
    """
    env = os.environ if environ is None else environ
    pid = env.get("LISTEN_PID")
    count_text = env.get("LISTEN_FDS")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(name, None)
    if pid is None or count_text is None:
        return []
    if not _pid_matches(pid):
        log.debug("ignoring LISTEN_FDS meant for pid %s", pid)
        return []
    try:
        count = int(count_text)
    except ValueError:
        log.warning("ignoring LISTEN_FDS=%r: not a number", count_text)
        return []

    sockets: list[socket.socket] = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + max(count, 0)):
        try:
            os.set_inheritable(fd, False)
            # With fileno given, family, type and protocol are read from the fd itself.
            sockets.append(socket.socket(fileno=fd))
        except OSError as exc:
            log.warning("ignoring passed fd %d: %s", fd, exc)
    return sockets

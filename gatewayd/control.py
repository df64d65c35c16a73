"""The local control socket: operations from the command line while the daemon runs.

A unix stream socket in the state directory (mode 0600 in a 0700 directory: file permissions are
the guard). Each connection carries one request line `{"op": "...", "args": {...}}` and gets one
reply line `{"ok": true, "result": ...}` or `{"ok": false, "error": {"code", "message"}}`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import trio

from . import ops
from .journal.writer import JournalUnavailable

log = logging.getLogger("gatewayd.control")

MAX_REQUEST = 1024 * 1024
SOCKET_NAME = "control.sock"


def socket_path(state_dir: Path) -> Path:
    return Path(state_dir) / SOCKET_NAME


async def _read_line(stream: trio.SocketStream) -> bytes:
    buffer = bytearray()
    while b"\n" not in buffer:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        buffer += chunk
        if len(buffer) > MAX_REQUEST:
            raise ValueError("request too large")
    return bytes(buffer.split(b"\n", 1)[0])


async def handle(core, stream: trio.SocketStream) -> None:
    async with stream:
        try:
            with trio.fail_after(10):
                line = await _read_line(stream)
            request = json.loads(line)
            name, args = request["op"], request.get("args", {})
            result = await ops.call(core, name, args)
            reply = {"ok": True, "result": result}
        except ops.OpError as exc:
            reply = {"ok": False, "error": exc.to_dict()}
        except JournalUnavailable as exc:
            reply = {"ok": False, "error": {"code": "journal_unavailable", "message": str(exc)}}
        except (ValueError, KeyError, TypeError, trio.TooSlowError) as exc:
            reply = {"ok": False, "error": {"code": "bad_request", "message": f"bad control request: {exc}"}}
        except Exception:  # the error boundary of one control connection: it never ends the daemon
            log.exception("control request failed")
            core.metrics.inc("gatewayd_connection_errors_total", layer="control", kind="unix")
            reply = {"ok": False, "error": {"code": "internal", "message": "internal error; see the server log"}}
        try:
            await stream.send_all(json.dumps(reply).encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def serve(core, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    path = socket_path(core.settings.state_path)
    if path.exists() or path.is_symlink():
        path.unlink()
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        await sock.bind(str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(64)
    listener = trio.SocketListener(sock)
    try:
        task_status.started(path)
        async with trio.open_nursery() as nursery:
            while True:
                stream = await listener.accept()
                nursery.start_soon(handle, core, stream)
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def call_blocking(path: Path, name: str, args: dict, timeout: float = 30.0) -> dict:
    """Client side (the CLI): raises ConnectionError when no daemon listens there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"op": name, "args": args}).encode() + b"\n")
        data = bytearray()
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise ConnectionError("the daemon closed the control connection without replying")
    return json.loads(data)

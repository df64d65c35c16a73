"""Running one operation: through the daemon's control socket, or offline on the state directory when
no daemon runs (the same function, under the journal lock)."""

from __future__ import annotations

from typing import Any

import trio

from .. import config as config_mod, control, ops
from ..connectors import CONNECTORS
from ..journal.lock import JournalLocked
from ..journal.reader import CorruptJournal
from ..journal.writer import JournalUnavailable
from ..opcommands import CliError
from ..runtime import open_core


def run_op(settings: config_mod.Settings, name: str, args: dict[str, Any], timeout: float = 30.0) -> Any:
    path = control.socket_path(settings.state_path)
    if path.exists():
        try:
            reply = control.call_blocking(path, name, args, timeout=timeout)
        except (ConnectionRefusedError, FileNotFoundError):
            reply = None  # a stale socket: the daemon is not running
        except OSError as exc:
            raise CliError(f"cannot reach the daemon at {path}: {exc.strerror or exc}") from None
        if reply is not None:
            if not reply.get("ok"):
                error = reply.get("error", {})
                raise CliError(f"{error.get('code', 'error')}: {error.get('message', 'failed')}")
            return reply["result"]
    return trio.run(_run_offline, settings, name, args)


async def _run_offline(settings, name, args):
    failure = None
    try:
        async with open_core(settings, online=False, connectors=CONNECTORS) as core:
            try:
                return await ops.call(core, name, args)
            except (ops.OpError, JournalUnavailable) as exc:
                failure = exc  # raised below: out of the core's nursery, which would wrap it in a group
    except ops.OpError as exc:
        raise CliError(f"{exc.code}: {exc.message}") from None
    except (JournalLocked, CorruptJournal, JournalUnavailable) as exc:
        raise CliError(str(exc)) from None
    if isinstance(failure, ops.OpError):
        raise CliError(f"{failure.code}: {failure.message}") from None
    raise CliError(str(failure)) from None

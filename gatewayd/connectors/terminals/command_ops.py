"""Terminal commands for operators: the operations (control socket, offline CLI, REST) and their
command-line words."""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import command_codec as tc
from ...opcommands import Arg, OpCommand, table as _table
from ...ops import OpError, operation
from .commands import MAX_WAIT, public_command
from .push import command_lines as push_commands
from .service import check_sn


# -- operations ------------------------------------------------------------------------------------
def _wait_seconds(wait: Any) -> float:
    if not isinstance(wait, (int, float)) or isinstance(wait, bool) or not 0 <= wait <= MAX_WAIT:
        raise OpError("invalid", f"wait must be a number of seconds from 0 to {MAX_WAIT:g}", 422)
    return float(wait)


async def _enqueue_and_wait(core, sn, command, params, *, actor, reference=None, confirm=False,
                            expires_in=None, wait=0.0, confirm_destructive=False) -> dict[str, Any]:
    wait = _wait_seconds(wait)
    commands = core.service("terminal_commands")
    queued = await commands.enqueue(check_sn(sn), command, params, source=actor, reference=reference,
                                    confirm=confirm, expires_in=expires_in, watch=wait > 0 and core.online,
                                    confirm_destructive=confirm_destructive)
    if wait > 0 and core.online:
        outcome = await commands.wait_settled(queued["command_id"], wait)
        if outcome is not None:
            return outcome
        return public_command(core.state.terminals.commands.get(queued["command_id"], queued))
    return queued


@operation("terminal.command")
async def terminal_command(core, sn: str, command: str, params: dict | None = None, actor: str = "cli",
                           reference: str | None = None, confirm: bool = False, expires_in: float | None = None,
                           wait: float = 0.0, confirm_destructive: bool = False) -> dict[str, Any]:
    """`confirm` asks for comm_txconfirm when the terminal acknowledges (as a TX request's Confirm);
    `confirm_destructive` is the operator's yes to a command that erases data (cleanuser, ...)."""
    if params is not None and not isinstance(params, dict):
        raise OpError("invalid", "params must be an object", 422)
    return await _enqueue_and_wait(core, sn, command, params, actor=actor, reference=reference, confirm=confirm,
                                   expires_in=expires_in, wait=wait, confirm_destructive=confirm_destructive)


@operation("terminal.commands")
async def terminal_commands(core, sn: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
    found = [c for c in core.state.terminals.commands.values()
             if (sn is None or c["sn"] == sn) and (state is None or c["state"] == state)]
    return [public_command(c) for c in sorted(found, key=lambda c: c["queued_seq"])]


@operation("terminal.set_user")
async def terminal_set_user(core, sn: str, enrollid: int, name: str, backupnum: int, record: Any,
                            admin: int = 0, actor: str = "cli", wait: float = 0.0) -> dict[str, Any]:
    params = {"enrollid": enrollid, "name": name, "backupnum": backupnum, "admin": admin, "record": record}
    return await _enqueue_and_wait(core, sn, "setuserinfo", params, actor=actor, wait=wait)


# -- command line ----------------------------------------------------------------------------------------
def _json_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object such as '{\"doornum\":1}'")
    return value


def _command_line(c: dict[str, Any]) -> str:
    line = f"command {c['command_id']} ({c['command']} for {c['sn']}): {c['state']}"
    if c.get("error"):
        line += f" - {c['error']}"
    if c.get("result") is not None:
        line += "\n" + json.dumps(c["result"], indent=2, default=str)
    return line


COMMANDS = [
    OpCommand(("terminal", "command"), "terminal.command", "queue a command for a terminal (sent over its WebSocket)",
              [Arg("sn"), Arg("command", "cmd/ret: " + ", ".join(tc.COMMANDS) + "; PUSH: "
                              + ", ".join(push_commands.COMMANDS)),
               Arg("params", 'parameters as JSON, e.g. \'{"doornum":1}\'', flag=True, type=_json_arg),
               Arg("wait", "seconds to wait for the outcome (daemon running)", flag=True, type=float),
               Arg("confirm_destructive", "confirm a command that erases data (" + ", ".join(sorted(tc.DESTRUCTIVE))
                   + ")", switch=True)],
              _command_line),
    OpCommand(("terminal", "commands"), "terminal.commands", "list terminal commands",
              [Arg("sn", "only this terminal", flag=True), Arg("state", "queued, sent, acknowledged, failed, expired",
                                                                  flag=True)],
              lambda rows: _table(rows, ["command_id", "sn", "command", "state", "tries", "queued", "error"])),
    OpCommand(("terminal", "users"), "terminal.users", "list the users known on a terminal",
              [Arg("sn"), Arg("refresh", "first run getuserlist on the terminal (daemon running)", switch=True)],
              lambda r: _table([{**u, "credentials": " ".join(map(str, u.get("credentials", ())))}
                                for u in r["users"]],
                               ["enrollid", "name", "admin", "credentials", "enabled"])),
]

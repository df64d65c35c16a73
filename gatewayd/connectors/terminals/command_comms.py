"""Terminal commands on the monitoring streams: sent and confirmed commands as communications, every
step as an action, and TX requests turned into terminal commands."""

from __future__ import annotations

import json
from typing import Any

from ...comm_tables import Comms, each
from ...journal.record import Record, parse_ts
from ...ops import OpError
from ..monitor.resiot import COMM_TX, COMM_TXCONFIRM, Action, Communication
from ..monitor.tx_request import DEFAULT_TX_WINDOW
from .service import CONNECTOR_HTTP, CONNECTOR_PUSH, CONNECTOR_WS, protocol_of


# -- monitoring and TX ------------------------------------------------------------------------------
def _frame_bytes(data: dict[str, Any]) -> bytes:
    if data.get("line") is not None:  # a PUSH command line
        return data["line"].encode()
    params = data.get("params") or {}
    frame = {"cmd": data["command"], **params}
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()


def _sent_comm(record: Record) -> list[Communication]:
    data = record.data
    return [Communication(comm_type=COMM_TX, connector=data.get("connector", CONNECTOR_WS), dev_eui=data["sn"],
                          dt=parse_ts(record.ts), seq=record.seq, payload=_frame_bytes(data),
                          command=data["command"], reference=data.get("reference") or "",
                          confirmation=bool(data.get("confirm")), window=data.get("window") or DEFAULT_TX_WINDOW)]


def _confirm_comm(record: Record) -> list[Communication]:
    data = record.data
    if not data.get("confirm"):
        return []
    return [Communication(comm_type=COMM_TXCONFIRM, connector=data.get("connector", CONNECTOR_WS),
                          dev_eui=data["sn"], dt=parse_ts(record.ts), seq=record.seq,
                          reference=data.get("reference") or "", extra={"type": data["command"]})]


_COMMAND_ACTIONS = {
    "terminal.command_queued": "terminal_command_queued", "terminal.command_sent": "terminal_command_sent",
    "terminal.command_acknowledged": "terminal_command_acknowledged",
    "terminal.command_failed": "terminal_command_failed", "terminal.command_expired": "terminal_command_expired",
}


def _command_action(record: Record) -> Action:
    data = record.data
    details = {k: v for k, v in data.items() if k not in ("sn", "source")}
    return Action(action_type=_COMMAND_ACTIONS[record.type], actor=data.get("source") or f"terminal:{data['sn']}",
                  target=f"terminal:{data['sn']}", details=details, dt=parse_ts(record.ts), seq=record.seq)


class TerminalTx:
    """TX requests for terminals: the payload is a command frame, e.g. {"cmd":"opendoor","doornum":1};
    `"confirm_destructive":true` in it confirms a command that erases data; a raw frame travels as
    {"cmd":"raw","frame":{...}}."""

    def __init__(self, connector: str):
        self.connector = connector

    def owns(self, core, dev_key: str) -> bool:
        terminals = core.state.parts.get("terminals")
        return terminals is not None and terminals.get(dev_key) is not None

    async def submit(self, core, dev_key: str, tx) -> None:
        try:
            frame = json.loads(tx.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            if self.connector == CONNECTOR_PUSH and protocol_of(core.state.terminals.get(dev_key) or {}) == "push":
                frame = {"cmd": "raw", "line": tx.payload.decode("utf-8", "replace")}  # a PUSH command line as text
            else:
                raise OpError("invalid", "a terminal TX payload must be a JSON command such as "
                                         '{"cmd":"opendoor"} (Raw true, or its hex)', 422) from None
        if not isinstance(frame, dict) or not isinstance(frame.get("cmd"), str):
            raise OpError("invalid", 'a terminal TX payload must be a JSON object with "cmd"', 422)
        command = frame.pop("cmd")
        confirm_destructive = frame.pop("confirm_destructive", False)
        if command == "raw" and "frame" in frame:  # {"cmd":"raw","frame":{"cmd":"<newer command>",...}}
            frame = frame["frame"]
            if not isinstance(frame, dict):
                raise OpError("invalid", 'a raw TX frame must be a JSON object with "cmd"', 422)
        await core.service("terminal_commands").enqueue(dev_key, command, frame, source="tx",
                                                        reference=tx.reference or None, confirm=tx.confirm,
                                                        window=tx.window, confirm_destructive=confirm_destructive)


COMMS = Comms(
    communications={
        "terminal.command_sent": _sent_comm,
        "terminal.command_acknowledged": _confirm_comm,
    },
    actions=each(_COMMAND_ACTIONS, _command_action),
    tx_handlers=(TerminalTx(CONNECTOR_WS), TerminalTx(CONNECTOR_HTTP), TerminalTx(CONNECTOR_PUSH)),
)

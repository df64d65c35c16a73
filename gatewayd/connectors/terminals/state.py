"""Attendance terminals (by serial number `sn`) and the commands queued for them.

A terminal's `status` is "accepted" (added by an operator, approved, or auto-accepted), "pending"
(it called in unknown and waits for an operator) or "rejected" (an operator refused it; it stays
listed so it does not turn pending again). Commands keep their whole life in the journal:
queued -> sent (once per try) -> acknowledged | failed | expired.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ...journal.record import Record

FINISHED_COMMANDS_KEPT = 200  # per terminal; older finished commands stay in the journal only
COMMAND_OPEN_STATES = ("queued", "sent")


class TerminalsState:
    name = "terminals"

    def __init__(self) -> None:
        self.terminals: dict[str, dict[str, Any]] = {}
        self.commands: dict[str, dict[str, Any]] = {}
        self._finished: dict[str, deque[str]] = {}

    def appliers(self):
        return {
            "terminal.added": self._added,
            "terminal.pending": self._pending,
            "terminal.approved": self._approved,
            "terminal.rejected": self._rejected,
            "terminal.updated": self._updated,
            "terminal.deleted": self._deleted,
            "terminal.registered": self._registered,
            "terminal.info": self._info,
            "terminal.online": self._online,
            "terminal.offline": self._offline,
            "terminal.command_queued": self._command_queued,
            "terminal.command_sent": self._command_sent,
            "terminal.command_acknowledged": self._command_finished,
            "terminal.command_failed": self._command_finished,
            "terminal.command_expired": self._command_finished,
        }

    # -- lookups ----------------------------------------------------------------------------------
    def get(self, sn: str) -> dict[str, Any] | None:
        return self.terminals.get(sn)

    def open_commands(self, sn: str) -> list[dict[str, Any]]:
        """Queued or sent commands of a terminal, oldest first."""
        found = [c for c in self.commands.values() if c["sn"] == sn and c["state"] in COMMAND_OPEN_STATES]
        return sorted(found, key=lambda c: c["queued_seq"])

    # -- registry ---------------------------------------------------------------------------------
    def _new(self, sn: str, record: Record, status: str) -> dict[str, Any]:
        return {"sn": sn, "name": sn, "tz": None, "cloudtime": None, "encoding": None, "access": None, "status": status,
                "created": record.ts, "updated": record.ts, "decided_by": None, "cpusn": None,
                "devinfo": {}, "model": None, "connector": None, "online": False, "last_seen": None,
                "registered": None}

    def _settings(self, terminal: dict[str, Any], data: dict[str, Any]) -> None:
        for key in ("name", "tz", "cloudtime", "encoding", "access"):
            if key in data:
                terminal[key] = data[key] if key != "name" else (data[key] or terminal["sn"])

    def _added(self, record: Record) -> None:
        data = record.data
        terminal = self.terminals.get(data["sn"]) or self._new(data["sn"], record, "accepted")
        terminal.update(status="accepted", updated=record.ts, decided_by=data.get("actor"))
        self._settings(terminal, data)
        self.terminals[data["sn"]] = terminal

    def _pending(self, record: Record) -> None:
        data = record.data
        if data["sn"] not in self.terminals:
            terminal = self._new(data["sn"], record, "pending")
            terminal["connector"] = data.get("connector")
            terminal["last_seen"] = record.ts
            self.terminals[data["sn"]] = terminal

    def _approved(self, record: Record) -> None:
        self._added(record)

    def _rejected(self, record: Record) -> None:
        terminal = self.terminals.get(record.data["sn"])
        if terminal is not None:
            terminal.update(status="rejected", updated=record.ts, decided_by=record.data.get("actor"),
                            online=False)

    def _updated(self, record: Record) -> None:
        terminal = self.terminals.get(record.data["sn"])
        if terminal is not None:
            self._settings(terminal, record.data)
            terminal["updated"] = record.ts

    def _deleted(self, record: Record) -> None:
        sn = record.data["sn"]
        self.terminals.pop(sn, None)
        for command_id in [cid for cid, c in self.commands.items() if c["sn"] == sn]:
            del self.commands[command_id]
        self._finished.pop(sn, None)

    # -- presence ---------------------------------------------------------------------------------
    def _registered(self, record: Record) -> None:
        data = record.data
        terminal = self.terminals.get(data["sn"])
        if terminal is None:
            return
        terminal.update(cpusn=data.get("cpusn") or terminal["cpusn"], devinfo=data.get("devinfo") or {},
                        model=(data.get("devinfo") or {}).get("modelname") or terminal["model"],
                        registered=record.ts, last_seen=record.ts, connector=data["connector"])

    def _info(self, record: Record) -> None:
        """Device information reported outside a registration (a PUSH terminal's options)."""
        terminal = self.terminals.get(record.data["sn"])
        if terminal is not None:
            terminal["devinfo"] = {**terminal["devinfo"], **record.data["devinfo"]}
            terminal["model"] = terminal["devinfo"].get("modelname") or terminal["model"]

    def _online(self, record: Record) -> None:
        terminal = self.terminals.get(record.data["sn"])
        if terminal is not None:
            terminal.update(online=True, connector=record.data["connector"], last_seen=record.ts)

    def _offline(self, record: Record) -> None:
        terminal = self.terminals.get(record.data["sn"])
        if terminal is not None:
            terminal["online"] = False
            if record.data.get("last_seen"):
                terminal["last_seen"] = record.data["last_seen"]

    # -- commands ---------------------------------------------------------------------------------
    def _command_queued(self, record: Record) -> None:
        data = record.data
        self.commands[data["command_id"]] = {
            "command_id": data["command_id"], "sn": data["sn"], "command": data["command"],
            "params": data.get("params") or {}, "state": "queued", "tries": 0, "source": data.get("source"),
            "reference": data.get("reference"), "confirm": bool(data.get("confirm")),
            "expires": data.get("expires"), "queued": record.ts, "queued_seq": record.seq,
            "updated": record.ts, "result": None, "error": None,
        }
        if data.get("window"):
            self.commands[data["command_id"]]["window"] = data["window"]

    def _command_sent(self, record: Record) -> None:
        command = self.commands.get(record.data["command_id"])
        if command is not None:
            command.update(state="sent", tries=record.data["try"], updated=record.ts)

    def _command_finished(self, record: Record) -> None:
        data = record.data
        command = self.commands.get(data["command_id"])
        if command is None:
            return
        command.update(state=record.type.rsplit("_", 1)[1], updated=record.ts,
                       result=data.get("result"), error=data.get("reason"))
        finished = self._finished.setdefault(command["sn"], deque())
        finished.append(command["command_id"])
        while len(finished) > FINISHED_COMMANDS_KEPT:
            self.commands.pop(finished.popleft(), None)

    # -- snapshots --------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"terminals": self.terminals, "commands": self.commands,
                "finished": {sn: list(ids) for sn, ids in self._finished.items()}}

    def restore(self, data: dict[str, Any]) -> None:
        self.terminals = data["terminals"]
        self.commands = data["commands"]
        self._finished = {sn: deque(ids) for sn, ids in data.get("finished", {}).items()}

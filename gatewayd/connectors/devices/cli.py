"""`gatewayd device ...`: the command-line words for the device operations."""

from __future__ import annotations

import json
from typing import Any

from ...opcommands import Arg, CliError, OpCommand, pairs as _pairs, table as _table

LORAWAN_ARGS = ("dev_eui", "app_eui", "app_key", "dev_addr", "nwk_s_key", "app_s_key", "relax_fcnt", "class")


def _prepare_add(args: dict[str, Any]) -> dict[str, Any]:
    lorawan = {k: args.pop(k) for k in LORAWAN_ARGS if k in args}
    if args.pop("lorawan", False):
        args["lorawan"] = {k: v for k, v in lorawan.items() if v is not None}
        args["lorawan"]["relax_fcnt"] = bool(lorawan.get("relax_fcnt"))
    elif any(v for v in lorawan.values()):
        raise CliError("the LoRaWAN options need --lorawan", 2)
    return args


def _prepare_send(args: dict[str, Any]) -> dict[str, Any]:
    if "payload" in args:
        try:
            args["payload"] = json.loads(args["payload"])
        except ValueError as exc:
            raise CliError(f"--payload is not valid JSON: {exc}", 2) from None
    return args


def _created(r: dict[str, Any]) -> str:
    lines = [f"device {r['id']} ({r['name']}) created", f"id: {r['id']}"]
    if r.get("token"):
        lines.append(f"token: {r['token']}")
        lines.append("the token is shown only now; store it on the device")
    return "\n".join(lines)


def _rotated(r: dict[str, Any]) -> str:
    return f"new token for {r['id']} (shown only now; the old one no longer works):\n{r['token']}"


def _show(r: dict[str, Any]) -> str:
    return _pairs({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()})


DEVICE_COLUMNS = ["id", "name", "kind", "status", "last_seen", "tags"]
COMMAND_COLUMNS = ["id", "command", "state", "queued", "sent", "acknowledged", "expires_at"]

COMMANDS = [
    OpCommand(("device", "add"), "device.create", "add a device (prints its id and token once)",
              [Arg("name", "the device's name"),
               Arg("tags", "comma-separated tags", flag=True),
               Arg("lorawan", "a LoRaWAN device (with the options below)", switch=True),
               Arg("dev_eui", "LoRaWAN DevEUI (16 hex digits)", flag=True),
               Arg("app_eui", "LoRaWAN AppEUI / JoinEUI (OTAA)", flag=True),
               Arg("app_key", "LoRaWAN AppKey (OTAA)", flag=True),
               Arg("dev_addr", "LoRaWAN DevAddr (ABP)", flag=True),
               Arg("nwk_s_key", "LoRaWAN NwkSKey (ABP)", flag=True),
               Arg("app_s_key", "LoRaWAN AppSKey (ABP)", flag=True),
               Arg("relax_fcnt", "LoRaWAN: accept frame counter resets", switch=True),
               Arg("class", "LoRaWAN device class: A (default) or C (always listening)", flag=True)],
              _created, _prepare_add),
    OpCommand(("device", "list"), "device.list", "list devices with status and last seen",
              [Arg("tag", "only devices with this tag", flag=True),
               Arg("status", "online, offline or disabled", flag=True)],
              lambda r: _table([{**d, "tags": ",".join(d["tags"])} for d in r], DEVICE_COLUMNS)),
    OpCommand(("device", "show"), "device.show", "show one device", [Arg("device_id")], _show),
    OpCommand(("device", "rotate-token"), "device.rotate_token",
              "give a device a new token (the old one stops working, a live connection is closed)",
              [Arg("device_id")], _rotated),
    OpCommand(("device", "disable"), "device.disable", "refuse a device's connections (a live one is closed)",
              [Arg("device_id")], lambda r: f"device {r['id']} disabled"),
    OpCommand(("device", "enable"), "device.enable", "accept a device's connections again",
              [Arg("device_id")], lambda r: f"device {r['id']} enabled"),
    OpCommand(("device", "delete"), "device.delete", "delete a device", [Arg("device_id")],
              lambda r: f"device {r['id']} deleted"),
    OpCommand(("device", "send"), "device.send", "queue a command for a device",
              [Arg("device_id"), Arg("command", "the command's name"),
               Arg("payload", "the command's payload (a JSON object)", flag=True),
               Arg("expires_in", "seconds before an undelivered command expires", flag=True, type=float)],
              lambda r: f"command {r['id']} ({r['command']}) queued for {r['device_id']}", _prepare_send),
    OpCommand(("device", "commands"), "device.commands", "list a device's commands and their states",
              [Arg("device_id"), Arg("state", "only commands in this state", flag=True)],
              lambda r: _table(r, COMMAND_COLUMNS)),
]

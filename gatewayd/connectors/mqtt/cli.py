"""`gatewayd mqtt status`: the connection, the cursor and the backlog (daemon running or not)."""

from __future__ import annotations

from typing import Any

from ...opcommands import OpCommand
from ...textsafe import printable
from ...ops import operation


@operation("mqtt.status")
async def mqtt_status(core) -> dict[str, Any]:
    return core.service("mqtt").status()


def _human(status: dict[str, Any]) -> str:
    if not status["enabled"]:
        return "MQTT: off (set mqtt.url to turn it on)"
    lines = [f"MQTT: {status['state']} ({status['broker']}, client id {status['client_id']})"]
    if status.get("last_error"):
        lines.append(f"last error: {status['last_error']} ({status['failed_attempts']} failed attempts)")
    lines += [
        f"topics: {status['topic_prefix']}/...  (site {status['site']}, QoS {status['qos']})",
        f"cursor: seq {status['cursor_seq']} of {status['journal_seq']}: {status['backlog_records']} records "
        f"behind, {status['in_flight']} in flight",
        f"published: {status['published_total']} messages ({status['published_per_second']}/s), "
        f"{status['refused_by_broker_total']} refused by the broker, {status['dropped_records_total']} records "
        f"given up",
        "commands: " + ", ".join(f"{n} {k}" for k, n in status["commands"].items()),
    ]
    return printable("\n".join(lines), keep_newlines=True)


COMMANDS = [
    OpCommand(("mqtt", "status"), "mqtt.status", "the MQTT connection, cursor and backlog", human=_human),
]

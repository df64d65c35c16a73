"""MQTT names: site / prefix / client id, and the topic of each event (pure). The broker URL is read by
`gatewayd.broker_url`, which the configuration loader shares.

    {prefix}/device/{device_id}/event/{up|join|tx|txack|txconfirm|status|command}
    {prefix}/gateway/{gateway_eui}/event/{alive|rx|tx|status}
    {prefix}/terminal/{sn}/event/{attendance|status|command}
    {prefix}/alert                                  (alerts raised and cleared: northbound/alerts.py)
    {prefix}/device/{device_id}/command/down        (subscribed)
    {prefix}/terminal/{sn}/command/down             (subscribed)

An id becomes one topic level: '/', '+', '#', '%' and control characters in it are written as %XX,
so no id can reach into another device's topics or act as a wildcard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...broker_url import SITE_NAME
from ...northbound.alerts import ALERT
from ...northbound.events import DEVICE, TERMINAL, NorthboundEvent

COMMAND_SUBJECTS = (DEVICE, TERMINAL)
MAX_ID_CHARS = 128

_ESCAPED = re.compile(r"[%/+#\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def escape_level(text: str) -> str:
    return _ESCAPED.sub(lambda m: "%%%02X" % ord(m.group()), text)


def unescape_level(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


@dataclass(frozen=True)
class Names:
    site: str
    prefix: str
    client_id: str


def resolve_names(site: str, topic_prefix: str, client_id: str, hostname: str) -> Names:
    """The effective site, prefix and client id (empty settings take their defaults)."""
    site = site or _site_from_hostname(hostname)
    prefix = (topic_prefix or "gatewayd/{site}").replace("{site}", site)
    return Names(site, prefix, (client_id or "gatewayd-{site}").replace("{site}", site))


def _site_from_hostname(hostname: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", hostname.split(".")[0])[:64].strip("-")
    return name if SITE_NAME.fullmatch(name or "-") else "gatewayd"


def event_topic(prefix: str, event: NorthboundEvent) -> str:
    if event.subject == ALERT:
        return f"{prefix}/{ALERT}"
    return f"{prefix}/{event.subject}/{escape_level(event.subject_id)}/event/{event.event}"


def command_filters(prefix: str) -> list[str]:
    return [f"{prefix}/{subject}/+/command/down" for subject in COMMAND_SUBJECTS]


def parse_command_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """(subject, id) of a command/down topic under `prefix`, or None for any other topic."""
    if not topic.startswith(prefix + "/"):
        return None
    levels = topic[len(prefix) + 1:].split("/")
    if len(levels) != 4 or levels[0] not in COMMAND_SUBJECTS or levels[2:] != ["command", "down"]:
        return None
    ident = unescape_level(levels[1])
    if not ident or len(ident) > MAX_ID_CHARS:
        return None
    return levels[0], ident

"""MQTT names: the broker URL, site / prefix / client id, and the topic of each event (pure).

    {prefix}/device/{device_id}/event/{up|join|tx|txack|txconfirm|status|command}
    {prefix}/gateway/{gateway_eui}/event/{alive|rx|status}
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
from urllib.parse import urlsplit

from ...northbound.alerts import ALERT
from ...northbound.events import DEVICE, TERMINAL, NorthboundEvent

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
COMMAND_SUBJECTS = (DEVICE, TERMINAL)
MAX_ID_CHARS = 128

_ESCAPED = re.compile(r"[%/+#\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str) -> BrokerAddress:
    """mqtt://host[:port] or mqtts://host[:port]; nothing else (credentials go in their own keys)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"mqtt.url: {url!r} is not a URL ({exc})") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"mqtt.url: {url!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"mqtt.url: {url!r} names no host")
    if parts.username or parts.password:
        raise ValueError("mqtt.url: put the user in mqtt.username and the password in mqtt.password_file, "
                         "not in the URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"mqtt.url: {url!r} has a path or query; only scheme, host and port are used")
    return BrokerAddress(parts.hostname, port or DEFAULT_PORTS[parts.scheme], parts.scheme == "mqtts")


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
    return name if _SITE.fullmatch(name or "-") else "gatewayd"


def check_settings(mqtt) -> None:
    """What the configuration loader checks beyond types and ranges (raises ValueError)."""
    parse_url(mqtt.url)
    if mqtt.site and not _SITE.fullmatch(mqtt.site):
        raise ValueError(f"mqtt.site: {mqtt.site!r} must be 1 to 64 letters, digits, '.', '_' or '-'")
    prefix = mqtt.topic_prefix.replace("{site}", "site")
    if mqtt.topic_prefix and (not prefix or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix
                              or any(c in prefix for c in "+#\x00")):
        raise ValueError(f"mqtt.topic_prefix: {mqtt.topic_prefix!r} must be topic levels separated by '/', "
                         "without wildcards or empty levels")
    if len(mqtt.client_id) > 128:
        raise ValueError("mqtt.client_id: at most 128 characters")
    if bool(mqtt.cert_file) != bool(mqtt.key_file):
        raise ValueError("mqtt.cert_file and mqtt.key_file: set both or neither")
    if (mqtt.ca_file or mqtt.cert_file) and not mqtt.url.startswith("mqtts://"):
        raise ValueError("mqtt.ca_file / cert_file are for mqtts:// URLs")


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

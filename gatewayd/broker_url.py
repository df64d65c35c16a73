"""MQTT broker URLs and the checks of the `mqtt` section beyond types and ranges (pure). The
configuration loader and the MQTT connector share them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


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


def check_settings(mqtt) -> None:
    """What the configuration loader checks beyond types and ranges (raises ValueError)."""
    parse_url(mqtt.url)
    if mqtt.site and not SITE_NAME.fullmatch(mqtt.site):
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

"""TOML configuration -> typed, validated settings.

Every key has a default, so an empty file (or none) is a working configuration. Errors name the
file, the key and what is wrong. Keys marked `reload=True` take effect on SIGHUP; the others need a
restart (a reload that changes them logs that).
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import ipaddress
import os
import re
import sys
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .broker_url import check_settings as check_mqtt_settings
from .config_sections import (  # noqa: F401  (re-exported: every section is used as config.X)
    ALERT_RULE_KEYS, AlertSettings, AttendanceSettings, ConfigError, DeviceSettings, HistorySettings,
    JournalSettings, LogSettings, LorawanSettings, MonitorSettings, MqttSettings, PresenceSettings,
    REGION_NAMES, REGION_SUB_BANDS, SecuritySettings, ServerSettings, Settings, TerminalSettings,
    WEBHOOK_EVENTS, WEBHOOK_NAME, WEBHOOK_OWN_HEADERS, WebhookSettings, _entry_dict, _key,
    _sections,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CONFIG_PATH = Path("/etc/gatewayd/gatewayd.toml")


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "an array", dict: "a table"}


def _coerce(value: Any, typ: type, where: str) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got a boolean")
    if not isinstance(value, typ):
        raise ConfigError(f"{where}: expected {_TYPE_NAMES.get(typ, typ.__name__)}, got {type(value).__name__}")
    return value


def _check_value(section: str, name: str, value: Any, meta: dict) -> None:
    where = f"{section}.{name}"
    if meta.get("min") is not None and value < meta["min"]:
        raise ConfigError(f"{where}: {value} is below the minimum {meta['min']}")
    if meta.get("max") is not None and value > meta["max"]:
        raise ConfigError(f"{where}: {value} is above the maximum {meta['max']}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, meta['choices']))}")


def _check_semantics(settings: Settings) -> None:
    for where, zone in (("terminals.timezone", settings.terminals.timezone),
                        ("monitor.timezone", settings.monitor.timezone)):
        if zone:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"{where}: unknown time zone {zone!r}") from None
    try:
        codecs.lookup(settings.terminals.push_encoding)
    except LookupError:
        raise ConfigError(f"terminals.push_encoding: unknown encoding {settings.terminals.push_encoding!r}") from None
    net_id = settings.lorawan.net_id
    if len(net_id) != 6 or any(c not in "0123456789abcdefABCDEF" for c in net_id):
        raise ConfigError(f"lorawan.net_id: {net_id!r} is not 6 hexadecimal digits")
    sub_bands = REGION_SUB_BANDS.get(settings.lorawan.region, 0)
    if settings.lorawan.sub_band > sub_bands:
        allowed = f"0 to {sub_bands}" if sub_bands else "0 (the region has no sub-bands)"
        raise ConfigError(f"lorawan.sub_band: {settings.lorawan.sub_band} is not valid for "
                          f"{settings.lorawan.region}: {allowed}")
    for i, path in enumerate(settings.terminals.ws_paths):
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"terminals.ws_paths[{i}]: {path!r} is not a path starting with '/'")
    url = settings.lorawan.station_public_url
    if url and not re.fullmatch(r"wss?://[^/\s:]+(:\d{1,5})(/[^\s]*)?", url) \
            and not re.fullmatch(r"wss?://\[[0-9A-Fa-f:.]+\](:\d{1,5})(/[^\s]*)?", url):
        raise ConfigError(f"lorawan.station_public_url: {url!r} is not ws:// or wss:// with a host and an explicit port")
    if bool(settings.server.certfile) != bool(settings.server.keyfile):
        raise ConfigError("server.certfile and server.keyfile: set both or neither")
    for where in ("certfile", "keyfile"):
        path = getattr(settings.server, where)
        if path and not os.access(path, os.R_OK):
            raise ConfigError(f"server.{where}: {path} cannot be read")
    for i, entry in enumerate(settings.server.trusted_proxies):
        try:
            ipaddress.ip_network(str(entry).strip(), strict=False)
        except ValueError:
            raise ConfigError(f"server.trusted_proxies[{i}]: {entry!r} is not an IP address or network") from None
    if settings.mqtt.url:
        try:
            check_mqtt_settings(settings.mqtt)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    for i, rule in enumerate(settings.alerts.rules):
        _check_alert_rule(rule, f"alerts.rules[{i}]")
    names = set()
    for i, hook in enumerate(settings.webhooks):
        check_webhook(hook, f"webhooks[{i}]")
        name = webhook_name(hook)
        if name in names:
            raise ConfigError(f"webhooks[{i}]: a second webhook named {name!r} (names must differ)")
        names.add(name)


def _check_alert_rule(rule: Any, where: str) -> None:
    if not isinstance(rule, dict):
        raise ConfigError(f"{where}: expected a table ([[alerts.rules]])")
    unknown = sorted(set(rule) - set(ALERT_RULE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]} (known: {', '.join(ALERT_RULE_KEYS)})")
    if ("tag" in rule) == ("device" in rule):
        raise ConfigError(f"{where}: give exactly one of `tag` and `device`")
    name = "tag" if "tag" in rule else "device"
    if not isinstance(rule[name], str) or not rule[name]:
        raise ConfigError(f"{where}.{name}: expected a non-empty string")
    after = rule.get("device_offline_after")
    if isinstance(after, bool) or not isinstance(after, (int, float)) or not 0 <= after <= 366 * 86400:
        raise ConfigError(f"{where}.device_offline_after: expected seconds from 0 to {366 * 86400}")


def from_mapping(data: dict[str, Any], source: str = "<built-in defaults>") -> Settings:
    settings = Settings()
    settings.source = source
    known = _sections()
    for section, values in data.items():
        if section == "webhooks":
            if not isinstance(values, list):
                raise ConfigError(f"{source}: webhooks: expected an array of tables ([[webhooks]])")
            settings.webhooks = [_fill(WebhookSettings(), f"webhooks[{i}]", entry, source)
                                 for i, entry in enumerate(values)]
            continue
        if section not in known:
            raise ConfigError(f"{source}: unknown section [{section}] (known: {', '.join(known)}, [[webhooks]])")
        _fill(getattr(settings, section), section, values, source)
    try:
        _check_semantics(settings)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return settings


def _fill(target: Any, section: str, values: Any, source: str) -> Any:
    """Set `target`'s keys from a TOML table, each checked against its definition."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: {section}: expected a table")
    fields = {f.name: f for f in dataclasses.fields(type(target))}
    for name, value in values.items():
        if name not in fields:
            raise ConfigError(f"{source}: unknown key {section}.{name}")
        f = fields[name]
        typ = get_origin(f.type) or (f.type if isinstance(f.type, type) else eval(f.type))
        try:
            value = _coerce(value, typ, f"{section}.{name}")
            _check_value(section, name, value, f.metadata)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        setattr(target, name, value)
    return target


def webhook_name(hook: WebhookSettings) -> str:
    """The webhook's name, or one derived from its URL (stable: the URL's hash)."""
    return hook.name or "url-" + hashlib.blake2s(hook.url.encode(), digest_size=5).hexdigest()


def check_webhook(hook: WebhookSettings, where: str) -> None:
    """Everything about one webhook that a key's type and range do not say (config and API alike)."""
    url = urlsplit(hook.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"{where}.url: expected an http:// or https:// URL, got {hook.url[:80]!r}")
    if len(hook.url) > 2048:
        raise ConfigError(f"{where}.url: longer than 2048 characters")
    if hook.name and not WEBHOOK_NAME.fullmatch(hook.name):
        raise ConfigError(f"{where}.name: {hook.name[:60]!r}: a-z, 0-9, '-' and '_', at most 48, starting with a "
                          "letter or digit")
    if not hook.events or not all(isinstance(e, str) for e in hook.events):
        raise ConfigError(f"{where}.events: expected a non-empty list of event names")
    unknown = [e for e in hook.events if e != "*" and e not in WEBHOOK_EVENTS]
    if unknown:
        raise ConfigError(f"{where}.events: unknown event {unknown[0][:40]!r} (known: {', '.join(WEBHOOK_EVENTS)}, *)")
    if len(hook.secret) > 512:
        raise ConfigError(f"{where}.secret: longer than 512 characters")
    if len(hook.headers) > 32:
        raise ConfigError(f"{where}.headers: at most 32")
    for key, value in hook.headers.items():
        if not _HEADER_NAME.fullmatch(key) or key.lower() in WEBHOOK_OWN_HEADERS:
            raise ConfigError(f"{where}.headers: {key[:60]!r} is not a header name a webhook may set")
        if not isinstance(value, str) or len(value) > 4096 or any(c in value for c in "\r\n\0"):
            raise ConfigError(f"{where}.headers.{key}: expected a one-line string of at most 4096 characters")


_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")


def load(path: str | os.PathLike | None, overrides: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Read `path` (or /etc/gatewayd/gatewayd.toml when it exists, else defaults), then overrides."""
    data: dict[str, Any] = {}
    source = "<built-in defaults>"
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"{source}: file not found") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    return from_mapping(data, source)


def reload_changes(old: Settings, new: Settings) -> tuple[list[str], list[str]]:
    """(keys applied live, keys that need a restart) between two settings."""
    live, restart = [], []
    for section in _sections():
        for f in dataclasses.fields(type(getattr(old, section))):
            before = getattr(getattr(old, section), f.name)
            after = getattr(getattr(new, section), f.name)
            if before != after:
                (live if f.metadata.get("reload") else restart).append(f"{section}.{f.name}")
    if old.webhooks != new.webhooks:
        live.append("webhooks")
    return live, restart


def apply_reload(current: Settings, new: Settings) -> None:
    """Copy the reloadable keys of `new` into `current` in place (services hold `current`)."""
    for section in _sections():
        target, source = getattr(current, section), getattr(new, section)
        for f in dataclasses.fields(type(target)):
            if f.metadata.get("reload"):
                setattr(target, f.name, getattr(source, f.name))
    current.webhooks = new.webhooks


def sample_toml() -> str:
    """The commented sample configuration: every key, its default and what it does."""
    lines = [
        "# gatewayd configuration. Every key is optional; the values shown are the defaults.",
        "# Uncomment a `#key = value` line to change it.",
        "# Keys marked (reload) take effect on `systemctl reload gatewayd` (SIGHUP); others need a restart.",
        "",
    ]
    defaults = Settings()
    for section in _sections():
        lines.append(f"[{section}]")
        for f in dataclasses.fields(type(getattr(defaults, section))):
            value = getattr(getattr(defaults, section), f.name)
            note = " (reload)" if f.metadata.get("reload") else ""
            lines.append(f"# {f.metadata['doc']}{note}")
            if isinstance(value, dict):
                lines.append(f"#{f.name} = {{}}")
            elif f.metadata.get("example"):
                for entry in f.metadata["example"]:  # an example, not a default: indented
                    lines.append(f"# [[{section}.{f.name}]]")
                    lines.extend(f"#   {k} = {_toml_value(v)}" for k, v in entry.items())
            else:
                lines.append(f"#{f.name} = {_toml_value(value)}")
        lines.append("")
    lines += ["# Webhooks: one [[webhooks]] table per endpoint; none by default. The whole list is reloadable;",
              "# webhooks can also be added at runtime (gatewayd webhook add, /api/webhooks, the dashboard).",
              "# [[webhooks]]"]
    for f in dataclasses.fields(WebhookSettings):
        value = _WEBHOOK_EXAMPLE.get(f.name, getattr(WebhookSettings(), f.name))
        lines.append(f"#   # {f.metadata['doc']}")
        lines.append(f"#   {f.name} = {_toml_value(value)}")
    lines.append("")
    return "\n".join(lines)


_WEBHOOK_EXAMPLE = {"url": "https://example.com/hooks/gatewayd", "name": "erp", "events": ["up", "alert"],
                    "secret": "a long random string", "headers": {"Authorization": "Bearer example"}}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    return repr(value)


def reference_markdown() -> str:
    """docs/configuration.md: the same definitions as the sample, as a reference table."""
    lines = [
        "# Configuration reference", "",
        "gatewayd reads `/etc/gatewayd/gatewayd.toml` when it exists, or the file given with `--config`.",
        "Every key is optional. Errors name the file and the key, and `gatewayd serve` exits with status 2",
        "before binding anything. `gatewayd config check` prints the effective configuration (secrets",
        "redacted). Keys marked *reload* take effect on SIGHUP (`systemctl reload gatewayd`); changing any",
        "other key needs a restart (a reload logs which). Command-line flags `--host`, `--port`,",
        "`--udp-port` and `--state-dir` override the file.", "",
        "This page is generated by `gatewayd config reference`; `gatewayd config sample` prints the same",
        "as the commented sample file (`etc/gatewayd.toml`).", "",
    ]
    defaults = Settings()
    tables = [(f"[{section}]", getattr(defaults, section), None) for section in _sections()]
    tables.append(("[[webhooks]]", WebhookSettings(), True))
    for heading, values, reload in tables:
        lines += [f"## {heading}", "", "| key | default | reload | meaning |", "| --- | --- | --- | --- |"]
        for f in dataclasses.fields(values):
            value = getattr(values, f.name)
            meta = f.metadata
            bounds = ""
            if meta.get("min") is not None:
                bounds = f" ({meta['min']:g} to {meta['max']:g})"
            if meta.get("choices"):
                bounds = " (one of " + ", ".join(f"`{c}`" for c in meta["choices"]) + ")"
            shown = "{}" if isinstance(value, dict) else _toml_value(value)
            live = meta.get("reload") if reload is None else reload
            lines.append(f"| `{f.name}` | `{shown}` | {'yes' if live else ''} | {meta['doc']}{bounds} |")
        lines.append("")
    lines += ["Webhooks are an array of tables: one `[[webhooks]]` per endpoint (none by default); see",
              "`docs/webhooks.md`.", ""]
    return "\n".join(lines)

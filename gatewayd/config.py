"""TOML configuration -> typed, validated settings.

Every key has a default, so an empty file (or none) is a working configuration. Errors name the
file, the key and what is wrong. Keys marked `reload=True` take effect on SIGHUP; the others need a
restart (a reload that changes them logs that).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CONFIG_PATH = Path("/etc/gatewayd/gatewayd.toml")


class ConfigError(ValueError):
    pass


def _key(*, doc: str, reload: bool = False, min: float | None = None, max: float | None = None,
         choices: tuple | None = None, secret: bool = False, default: Any = dataclasses.MISSING,
         default_factory: Any = dataclasses.MISSING):
    meta = {"doc": doc, "reload": reload, "min": min, "max": max, "choices": choices, "secret": secret}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ServerSettings:
    host: str = _key(default="0.0.0.0", doc="Address the TCP port listens on (HTTP, WebSockets, dashboard).")
    port: int = _key(default=3000, min=0, max=65535, doc="The one TCP port. 0 picks a free port (tests).")
    udp_port: int = _key(default=1700, min=0, max=65535,
                         doc="UDP port for LoRa packet forwarders (Semtech GWMP). 0 turns LoRaWAN off.")
    udp_host: str = _key(default="0.0.0.0", doc="Address the UDP port listens on.")
    state_dir: str = _key(default="/var/lib/gatewayd", doc="Where the journal, snapshots and control socket live.")
    graceful_timeout: float = _key(default=4.0, min=0.5, max=60,
                                   doc="Seconds a stop may take before remaining connections are cut.")
    max_body_bytes: int = _key(default=1_048_576, min=1024, max=64 * 1024 * 1024,
                               doc="Largest HTTP request body accepted.")
    tcp_user_timeout: float = _key(default=30.0, min=0, max=3600,
                                   doc="Seconds unacknowledged data may wait before a dead peer is cut (TCP_USER_TIMEOUT).")
    certfile: str = _key(default="", doc="TLS certificate (PEM). Empty: plain HTTP (use a reverse proxy for TLS).")
    keyfile: str = _key(default="", doc="TLS private key (PEM).")


@dataclass
class LogSettings:
    level: str = _key(default="info", reload=True, choices=("debug", "info", "warning", "error"),
                      doc="Log level.")


@dataclass
class JournalSettings:
    segment_bytes: int = _key(default=16 * 1024 * 1024, min=4096, max=1 << 31,
                              doc="A segment file is closed and a new one started past this size.")
    flush_interval_ms: int = _key(default=100, min=0, max=10_000,
                                  doc="Longest delay before non-durable records are written and fsynced.")
    durable_timeout: float = _key(default=10.0, min=0.1, max=300,
                                  doc="Seconds a client waits for its record to be durable before it gets a retryable error.")
    snapshot_every: int = _key(default=100_000, min=100, max=100_000_000, reload=True,
                               doc="Write a snapshot (and compact) after this many records.")
    history_max_age_days: float = _key(default=90, min=0.01, max=36500, reload=True,
                                       doc="Journal segments older than this (and already covered by a snapshot) are deleted.")
    history_max_bytes: int = _key(default=2 * 1024 ** 3, min=1 << 20, max=1 << 45, reload=True,
                                  doc="Journal segments beyond this total size (oldest first, covered by a snapshot) are deleted.")


@dataclass
class PresenceSettings:
    ws_timeout: float = _key(default=90.0, min=1, max=86400, reload=True,
                             doc="A WebSocket device that sent nothing (not even a ping) for this long is cut and offline.")
    http_timeout: float = _key(default=300.0, min=1, max=86400, reload=True,
                               doc="An HTTP device or terminal is offline when no request arrived for this long.")
    sweep_interval: float = _key(default=1.0, min=0.05, max=60, doc="How often offline transitions are checked.")


@dataclass
class DeviceSettings:
    register_timeout: float = _key(default=10.0, min=0.1, max=300, reload=True,
                                   doc="A WebSocket must register within this many seconds (else close 4008).")
    max_frame_bytes: int = _key(default=65536, min=256, max=16 * 1024 * 1024,
                                doc="Largest WebSocket message accepted (larger: close 1009).")
    rate_per_second: float = _key(default=50.0, min=0.01, max=1e6, reload=True,
                                  doc="Sustained messages per second per device (token bucket).")
    rate_burst: int = _key(default=100, min=1, max=1_000_000, reload=True, doc="Token bucket size per device.")
    max_consecutive_errors: int = _key(default=10, min=1, max=1000, reload=True,
                                       doc="Bad messages in a row before the connection is closed with 4000.")
    send_queue: int = _key(default=64, min=1, max=100_000, doc="Messages queued to one device's socket.")
    max_registering: int = _key(default=128, min=1, max=100_000,
                                doc="WebSockets between handshake and registration at once; more wait their turn "
                                    "(first come, first served) and get HTTP 503 after register_timeout.")
    command_expiry: float = _key(default=86400.0, min=1, max=365 * 86400, reload=True,
                                 doc="Default seconds before an undelivered command expires.")
    command_attempts: int = _key(default=3, min=1, max=100, reload=True,
                                 doc="Deliveries of a command (one per connection) without a command_result "
                                     "before it fails; fixed for a command when it is queued.")
    telemetry_history: int = _key(default=100, min=0, max=1_000_000,
                                  doc="No longer used: telemetry history lives in the history store "
                                      "(see [history]). Accepted so that older files stay valid.")


@dataclass
class TerminalSettings:
    auto_accept: bool = _key(default=False, reload=True,
                             doc="Accept terminals with an unknown serial number without an operator's approval.")
    ws_paths: list = _key(default_factory=lambda: ["/ws", "/"],
                          doc="WebSocket paths on which terminals (cmd/ret JSON) are accepted.")
    timezone: str = _key(default="UTC", reload=True, doc="Default time zone of terminals' clocks.")
    cloudtime: str = _key(default="iso", reload=True, choices=("iso", "local"),
                          doc="Form of `cloudtime` in replies: ISO 8601 UTC, or local 'YYYY-MM-DD HH:MM:SS'.")
    command_timeout: float = _key(default=20.0, min=0.1, max=600, reload=True,
                                  doc="Seconds to wait for a terminal's reply before retrying.")
    command_tries: int = _key(default=3, min=1, max=20, reload=True, doc="Tries before a terminal command fails.")
    page_cap: int = _key(default=200, min=1, max=100_000, doc="Most pages pulled by one paging command.")
    clock_skew_hours: float = _key(default=24.0, min=0.01, max=100_000, reload=True,
                                   doc="A punch further than this from the server clock is flagged.")
    codes: dict = _key(default_factory=dict, reload=True,
                       doc="Per-model code tables: [terminals.codes.<model>] mode = {\"1\" = \"fingerprint\"}, inout, event.")


@dataclass
class AttendanceSettings:
    retention_days: float = _key(default=0, min=0, max=36500, reload=True,
                                 doc="Punches older than this (by arrival) are deleted from the history store. "
                                     "0 keeps them for ever.")


@dataclass
class HistorySettings:
    telemetry_raw_days: float = _key(default=30, min=0.05, max=36500, reload=True,
                                     doc="Telemetry messages are kept as sent for this many days, then as hourly "
                                         "min/max/mean per numeric key.")
    telemetry_hourly_days: float = _key(default=400, min=1, max=36500, reload=True,
                                        doc="Hourly telemetry figures are kept for this many days.")
    communications_days: float = _key(default=30, min=0.05, max=36500, reload=True,
                                      doc="Communications (the monitoring stream's items) are kept for this many "
                                          "days for GET /api/communications.")
    max_bytes: int = _key(default=4 * 1024 ** 3, min=1 << 20, max=1 << 45, reload=True,
                          doc="The history store's data beyond this size: the oldest day of telemetry and "
                              "communications is dropped until it fits (a history.dropped record says what). "
                              "Punches are never dropped for it.")
    commit_interval: float = _key(default=1.0, min=0.05, max=60, reload=True,
                                  doc="Seconds between the history store's commits (fewer, larger writes for SD cards). "
                                      "A query waits for at most one early commit.")


@dataclass
class MonitorSettings:
    queue_size: int = _key(default=2000, min=1, max=1_000_000,
                           doc="Records a monitoring client may fall behind its stream before it is dropped "
                               "with 1013.")
    timezone: str = _key(default="", doc="Zone for DT fields; empty = the system's local zone.")
    writes_per_second: float = _key(default=2000.0, min=10, max=1_000_000, reload=True,
                                    doc="Socket writes per second that all clients of a stream share; each write "
                                        "carries what gathered since the last one. Lower: less CPU with many "
                                        "clients, more latency (a client waits up to clients / this seconds). "
                                        "While the daemon is saturated, writes spread out up to 10 times.")


@dataclass
class LorawanSettings:
    region: str = _key(default="EU868", choices=("EU868",), doc="Regional parameters.")
    net_id: str = _key(default="000000", doc="NetID (6 hex digits) used in join-accepts and DevAddr allocation.")
    accept_unknown_gateways: bool = _key(default=True, reload=True,
                                         doc="Accept packet forwarders whose EUI was not registered.")
    keepalive_interval: float = _key(default=10.0, min=1, max=3600, reload=True,
                                     doc="The packet forwarders' keep-alive period (PULL_DATA).")
    missed_keepalives: int = _key(default=3, min=1, max=100, reload=True,
                                  doc="A gateway is offline after this many missed keep-alives.")
    dedup_window_ms: int = _key(default=200, min=1, max=5000, doc="Copies of one uplink within this window are merged.")
    rx1_delay: float = _key(default=1.0, min=1, max=15, doc="Seconds from uplink to RX1 (class A).")
    join_accept_delay: float = _key(default=5.0, min=1, max=15, doc="Seconds from join-request to the join-accept's RX1.")
    tx_power: int = _key(default=14, min=0, max=30, doc="Downlink power (dBm) in PULL_RESP.")


@dataclass
class SecuritySettings:
    login_failures_per_minute: int = _key(default=5, min=1, max=1000, reload=True,
                                          doc="Failed logins (or bad keys/tokens) per source per minute before refusals.")
    session_hours: float = _key(default=12.0, min=0.1, max=24 * 365, reload=True,
                                doc="Dashboard session lifetime.")
    metrics_public_on_localhost: bool = _key(default=True, reload=True,
                                             doc="/metrics needs no API key for requests from 127.0.0.1/::1.")


@dataclass
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    log: LogSettings = field(default_factory=LogSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    presence: PresenceSettings = field(default_factory=PresenceSettings)
    devices: DeviceSettings = field(default_factory=DeviceSettings)
    terminals: TerminalSettings = field(default_factory=TerminalSettings)
    attendance: AttendanceSettings = field(default_factory=AttendanceSettings)
    history: HistorySettings = field(default_factory=HistorySettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    lorawan: LorawanSettings = field(default_factory=LorawanSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    source: str = field(default="<built-in defaults>", metadata={"internal": True})

    @property
    def state_path(self) -> Path:
        return Path(self.server.state_dir)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for section in _sections():
            values = {}
            for f in dataclasses.fields(type(getattr(self, section))):
                value = getattr(getattr(self, section), f.name)
                if redact and f.metadata.get("secret") and value:
                    value = "***"
                values[f.name] = value
            out[section] = values
        return out


def _sections() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings) if not f.metadata.get("internal")]


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
    net_id = settings.lorawan.net_id
    if len(net_id) != 6 or any(c not in "0123456789abcdefABCDEF" for c in net_id):
        raise ConfigError(f"lorawan.net_id: {net_id!r} is not 6 hexadecimal digits")
    for i, path in enumerate(settings.terminals.ws_paths):
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"terminals.ws_paths[{i}]: {path!r} is not a path starting with '/'")
    if bool(settings.server.certfile) != bool(settings.server.keyfile):
        raise ConfigError("server.certfile and server.keyfile: set both or neither")


def from_mapping(data: dict[str, Any], source: str = "<built-in defaults>") -> Settings:
    settings = Settings()
    settings.source = source
    known = _sections()
    for section, values in data.items():
        if section not in known:
            raise ConfigError(f"{source}: unknown section [{section}] (known: {', '.join(known)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: {section}: expected a table")
        target = getattr(settings, section)
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
    try:
        _check_semantics(settings)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return settings


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
    return live, restart


def apply_reload(current: Settings, new: Settings) -> None:
    """Copy the reloadable keys of `new` into `current` in place (services hold `current`)."""
    for section in _sections():
        target, source = getattr(current, section), getattr(new, section)
        for f in dataclasses.fields(type(target)):
            if f.metadata.get("reload"):
                setattr(target, f.name, getattr(source, f.name))


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
            else:
                lines.append(f"#{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
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
    for section in _sections():
        lines += [f"## [{section}]", "", "| key | default | reload | meaning |", "| --- | --- | --- | --- |"]
        for f in dataclasses.fields(type(getattr(defaults, section))):
            value = getattr(getattr(defaults, section), f.name)
            meta = f.metadata
            bounds = ""
            if meta.get("min") is not None:
                bounds = f" ({meta['min']:g} to {meta['max']:g})"
            if meta.get("choices"):
                bounds = " (one of " + ", ".join(f"`{c}`" for c in meta["choices"]) + ")"
            shown = "{}" if isinstance(value, dict) else _toml_value(value)
            lines.append(f"| `{f.name}` | `{shown}` | {'yes' if meta.get('reload') else ''} | {meta['doc']}{bounds} |")
        lines.append("")
    return "\n".join(lines)

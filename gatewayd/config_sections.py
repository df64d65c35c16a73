"""The configuration's sections and keys: one dataclass per TOML section, each key with its default,
limits and documentation (`_key`). Loading and checking them is `config.py`'s job; the sample file
and the reference page are generated from these definitions.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

class ConfigError(ValueError):
    pass


def _key(*, doc: str, reload: bool = False, min: float | None = None, max: float | None = None,
         choices: tuple | None = None, secret: bool = False, default: Any = dataclasses.MISSING,
         default_factory: Any = dataclasses.MISSING, example: list | None = None):
    meta = {"doc": doc, "reload": reload, "min": min, "max": max, "choices": choices, "secret": secret,
            "example": example}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ServerSettings:
    host: str = _key(default="0.0.0.0", doc="Address the TCP port listens on (HTTP, WebSockets, dashboard).")
    port: int = _key(default=3000, min=0, max=65535, doc="The one TCP port. 0 picks a free port (tests).")
    udp_port: int = _key(default=1700, min=0, max=65535,
                         doc="UDP port for LoRa packet forwarders (Semtech GWMP). 0 turns LoRaWAN off.")
    udp_host: str = _key(default="", doc="Address the UDP port listens on; empty: the same as host (so --host "
                                         "127.0.0.1 keeps both on the loopback).")
    state_dir: str = _key(default="/var/lib/gatewayd", doc="Where the journal, snapshots and control socket live.")
    graceful_timeout: float = _key(default=4.0, min=0.5, max=60,
                                   doc="Seconds a stop may take before remaining connections are cut.")
    max_body_bytes: int = _key(default=1_048_576, min=1024, max=64 * 1024 * 1024,
                               doc="Largest HTTP request body accepted.")
    tcp_user_timeout: float = _key(default=30.0, min=0, max=3600,
                                   doc="Seconds unacknowledged data may wait before a dead peer is cut (TCP_USER_TIMEOUT).")
    certfile: str = _key(default="", doc="TLS certificate (PEM), with keyfile. Empty: plain HTTP (or TLS at a reverse "
                                          "proxy: see trusted_proxies).")
    keyfile: str = _key(default="", doc="TLS private key (PEM). With certfile, the port serves HTTPS and WSS only.")
    trusted_proxies: list = _key(default_factory=list,
                                 doc="Reverse proxies (addresses or CIDR networks) whose X-Forwarded-Proto and "
                                     "X-Forwarded-For are believed: the client's address for per-address limits, "
                                     "and HTTPS for Secure cookies. Empty: those headers are ignored.")


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
    commit_interval_ms: int = _key(default=20, min=0, max=1000,
                                   doc="A commit waits up to this long after its first record to gather others "
                                       "before its fdatasync; acknowledgements still follow the fdatasync. Longer: "
                                       "fewer, fuller writes (less SD-card wear), later acks. 0: commit at once.")
    compress_closed_segments: bool = _key(default=True, reload=True,
                                          doc="Compress each segment with zstd once it is closed (the open "
                                              "segment stays plain JSON lines); every journal command reads both.")
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
                                   doc="A WebSocket must register within this many seconds (else close 4008); a register "
                                       "message waiting for a slot may wait longer (register_queue_timeout).")
    max_frame_bytes: int = _key(default=65536, min=256, max=16 * 1024 * 1024,
                                doc="Largest WebSocket message accepted (larger: close 1009).")
    rate_per_second: float = _key(default=50.0, min=0.01, max=1e6, reload=True,
                                  doc="Sustained messages per second per device (token bucket).")
    rate_burst: int = _key(default=100, min=1, max=1_000_000, reload=True, doc="Token bucket size per device.")
    max_consecutive_errors: int = _key(default=10, min=1, max=1000, reload=True,
                                       doc="Bad messages in a row before the connection is closed with 4000.")
    send_queue: int = _key(default=64, min=1, max=100_000, doc="Messages queued to one device's socket.")
    max_registering: int = _key(default=128, min=1, max=100_000,
                                doc="Registrations processed at once, counted from a connection's first frame (idle "
                                    "sockets hold none); more wait their turn (first come, first served) and are "
                                    "closed with 1013 if their wait ends first (see register_queue_timeout).")
    register_queue_timeout: float = _key(default=120.0, min=0.1, max=600, reload=True,
                                         doc="How long a WebSocket whose first message is a register message may "
                                             "wait for a registration slot (never less than register_timeout); "
                                             "then it is closed with 1013. Lets a reconnect storm of thousands of "
                                             "devices be served in turn instead of bouncing; each waiting socket "
                                             "holds only its connection and that message, and "
                                             "max_unregistered_per_source still bounds how many one address "
                                             "keeps waiting.")
    first_frame_timeout: float = _key(default=5.0, min=0.1, max=300, reload=True,
                                      doc="A new WebSocket that sends nothing for this long is closed (4008).")
    max_unregistered_per_source: int = _key(default=128, min=1, max=100_000, reload=True,
                                            doc="WebSockets from one address (an IPv6 /64) that have not registered "
                                                "yet; more are refused at the handshake (HTTP 503, Retry-After).")
    handshakes_per_second_per_source: float = _key(default=200.0, min=0.01, max=1e6, reload=True,
                                                   doc="New device/terminal WebSockets per second from one address; "
                                                       "more are refused (HTTP 503, Retry-After).")
    handshake_burst_per_source: int = _key(default=400, min=1, max=1_000_000, reload=True,
                                           doc="Handshakes one address may make at once before "
                                               "handshakes_per_second_per_source applies.")
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
    senduser: bool = _key(default=False, reload=True,
                          doc="Ask WebSocket terminals to send the users enrolled on their keypad (`senduser`, "
                              "templates included) as they are enrolled: the reg reply says nosenduser:false. "
                              "Off, the user list fills from getuserlist.")
    command_timeout: float = _key(default=20.0, min=0.1, max=600, reload=True,
                                  doc="Seconds to wait for a terminal's reply before retrying.")
    command_tries: int = _key(default=3, min=1, max=20, reload=True, doc="Tries before a terminal command fails.")
    page_cap: int = _key(default=200, min=1, max=100_000, doc="Most pages pulled by one paging command.")
    push_encoding: str = _key(default="gb18030", reload=True,
                              doc="How PUSH terminals' names are read when they are not UTF-8 (a terminal's "
                                  "own `encoding` setting wins), e.g. gb18030 (covers GBK), cp1252, big5.")
    clock_skew_hours: float = _key(default=24.0, min=0.01, max=100_000, reload=True,
                                   doc="A punch further than this from the server clock is flagged.")
    max_pending: int = _key(default=100, min=0, max=100_000, reload=True,
                            doc="Unknown terminals listed as pending at once; more are refused until an operator "
                                "decides (they keep their punches and call again).")
    unknown_per_minute_per_source: int = _key(default=10, min=1, max=100_000, reload=True,
                                              doc="New unknown serial numbers accepted as pending per minute from one "
                                                  "address.")
    max_held_per_terminal: int = _key(default=1000, min=0, max=1_000_000, reload=True,
                                      doc="Punches kept on disk for one pending terminal until it is approved; a "
                                          "batch beyond is refused (the terminal keeps it and sends it again).")
    max_held_bytes: int = _key(default=16 * 1024 * 1024, min=0, max=1 << 40, reload=True,
                               doc="Bytes of punches kept on disk for all pending terminals together (state_dir/held).")
    codes: dict = _key(default_factory=dict, reload=True,
                       doc="Per-model code tables: [terminals.codes.<model>] mode = {\"1\" = \"fingerprint\"}, inout, "
                           "event. Built in: mode 1 fingerprint, 2 password, 3 card, 8 face; inout 0 in, 1 out; "
                           "event 0 normal; a `default` table, then the model's, override these.")


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
    commit_interval: float = _key(default=5.0, min=0.05, max=60, reload=True,
                                  doc="Seconds between the history store's commits (fewer, larger writes for SD cards: "
                                      "the journal is the durable record, the store catches up from it). A query "
                                      "first asks for an early commit of every record durable when it came, and "
                                      "waits for it (up to 5 s), so it never reads older data.")


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


# The bands of gatewayd/connectors/lorawan/bands.py (this module imports nothing of the connectors)
REGION_NAMES = ("EU868", "US915", "AU915", "AS923-1", "AS923-2", "AS923-3", "AS923-4", "IN865", "KR920", "EU433",
                "CN470")
REGION_SUB_BANDS = {"US915": 8, "AU915": 8, "CN470": 12}


@dataclass
class LorawanSettings:
    region: str = _key(default="EU868", choices=REGION_NAMES,
                       doc="Regional parameters (LoRaWAN RP002-1.0.x band) of the gateways and devices.")
    sub_band: int = _key(default=0, min=0, max=12,
                         doc="US915/AU915 (1 to 8) and CN470 (1 to 12): the block of 8 channels the gateways "
                             "listen on, announced to devices in join-accepts and channel masks. 0 = every channel.")
    net_id: str = _key(default="000000", doc="NetID (6 hex digits) used in join-accepts and DevAddr allocation.")
    accept_unknown_gateways: bool = _key(default=True, reload=True,
                                         doc="Accept packet forwarders whose EUI was not registered.")
    unknown_source_datagrams_per_second: float = _key(
        default=20.0, min=0.1, max=1e6, reload=True,
        doc="Datagrams per second (burst: twice as many) from an address no admitted gateway sent from lately; "
            "more are dropped before they are parsed.")
    keepalive_interval: float = _key(default=10.0, min=1, max=3600, reload=True,
                                     doc="The packet forwarders' keep-alive period (PULL_DATA).")
    missed_keepalives: int = _key(default=3, min=1, max=100, reload=True,
                                  doc="A gateway is offline after this many missed keep-alives.")
    foreign_frames_per_second: float = _key(
        default=10.0, min=0, max=1e4,
        doc="Frames of devices that are not ours (unknown DevAddr, or a MIC no session matches) shown on the "
            "monitor as comm_gwrx with Extra.Mine \"false\", at most this many a second (burst: twice as many); "
            "0 = none.")
    dedup_window_ms: int = _key(default=200, min=1, max=5000, doc="Copies of one uplink within this window are merged.")
    rx1_delay: float = _key(default=1.0, min=1, max=15, doc="Seconds from uplink to RX1 (class A).")
    join_accept_delay: float = _key(default=5.0, min=1, max=15, doc="Seconds from join-request to the join-accept's RX1.")
    tx_power: int = _key(default=0, min=0, max=30,
                         doc="Downlink power (dBm) in PULL_RESP; 0 = the region's usual power (14 dBm in EU868, "
                             "20 dBm in US915); also a Station gateway's max_eirp.")
    extra_channels: bool = _key(default=True,
                                doc="Regions with default channels (EU868, AS923, KR920): give devices the region's "
                                    "extra channels (EU868: 867.1 to 867.9 MHz) in the join-accept's CFList, and ABP "
                                    "devices with NewChannelReq. false: the gateways listen on the default channels only.")
    adr: bool = _key(default=True, doc="Adaptive data rate: devices that set the ADR bit are told their data rate, TX "
                                       "power and repetitions (LinkADRReq) from the SNR of their last 20 uplinks.")
    adr_margin_db: float = _key(default=10.0, min=0, max=30,
                                doc="Installation margin of the ADR engine: SNR (dB) kept above what the data rate "
                                    "needs. Higher: slower data rates, fewer lost frames.")
    dev_status_hours: float = _key(default=24.0, min=0, max=8760,
                                   doc="Ask each device for its battery and link margin (DevStatusReq) this often; "
                                       "0 = never.")
    confirm_attempts: int = _key(default=3, min=1, max=15,
                                 doc="A confirmed downlink is sent again after each uplink without its ACK, up to "
                                     "this many times in all.")
    station_public_url: str = _key(default="", doc="Base URL (scheme, host, port) that Station discovery "
                                   "hands out, e.g. \"wss://lns.example.com:443\" behind a TLS proxy. Empty: "
                                   "ws:// (wss:// with server.certfile) and the host and port the station used.")
    station_max_frame_bytes: int = _key(default=16384, min=1024, max=65536,
                                        doc="Largest Station message; a bigger one closes the connection (1009).")


@dataclass
class SecuritySettings:
    login_failures_per_minute: int = _key(default=5, min=1, max=1000, reload=True,
                                          doc="Failed logins (or bad keys/tokens) per source per minute before refusals.")
    login_failures_per_minute_per_user: int = _key(default=20, min=1, max=10_000, reload=True,
                                                   doc="Failed logins per user name per minute, from all addresses "
                                                       "together, before refusals (each attempt counts before its "
                                                       "password is checked).")
    max_concurrent_password_checks: int = _key(default=2, min=1, max=64,
                                               doc="Password hashes computed at once (about 16 MiB each); more "
                                                   "logins wait up to 10 s, then get 503.")
    session_hours: float = _key(default=12.0, min=0.1, max=24 * 365, reload=True,
                                doc="Dashboard session lifetime.")
    metrics_public_on_localhost: bool = _key(default=True, reload=True,
                                             doc="/metrics needs no API key for requests from 127.0.0.1/::1.")


ALERT_RULE_KEYS = ("tag", "device", "device_offline_after")


@dataclass
class AlertSettings:
    device_offline_after: float = _key(default=300.0, min=0, max=366 * 86400, reload=True,
                                       doc="Seconds a device may stay offline before an alert is raised (0: no device "
                                           "alerts). Time while gatewayd itself was stopped does not count.")
    gateway_silent_after: float = _key(default=120.0, min=0, max=366 * 86400, reload=True,
                                       doc="Seconds a LoRa gateway may send nothing (keep-alive, status, uplink) before an "
                                           "alert (0: off).")
    terminal_offline_after: float = _key(default=600.0, min=0, max=366 * 86400, reload=True,
                                         doc="Seconds an accepted attendance terminal may stay offline before an alert "
                                             "(0: off).")
    disk_free_below_percent: float = _key(default=10.0, min=0, max=100, reload=True,
                                          doc="Alert when the state directory's file system has less free space than "
                                              "this share (0: off); cleared one point above it.")
    terminal_clock_skew_seconds: float = _key(default=120.0, min=0, max=366 * 86400, reload=True,
                                              doc="Alert when a terminal's clock (its checklive time) is further than this "
                                                  "from the server's (0: off).")
    check_interval: float = _key(default=5.0, min=0.1, max=3600, reload=True,
                                 doc="How often the alert conditions are evaluated.")
    rules: list = _key(default_factory=list, reload=True,
                       doc="Overrides per device or per tag: [[alerts.rules]] with `device = \"<id>\"` or `tag = "
                           "\"<tag>\"` and `device_offline_after` (seconds, 0: no alert). A device's own rule wins, "
                           "then the first matching tag rule in file order.",
                       example=[{"tag": "battery", "device_offline_after": 3600}])


WEBHOOK_EVENTS = ("up", "join", "tx", "txack", "txconfirm", "status", "command", "attendance", "alert", "alive", "rx")
WEBHOOK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
# Headers gatewayd sets itself; a webhook's `headers` may not replace them.
WEBHOOK_OWN_HEADERS = {"content-type", "content-length", "host", "x-gatewayd-signature", "x-gatewayd-delivery",
                       "x-gatewayd-event", "transfer-encoding", "connection"}


@dataclass
class WebhookSettings:
    url: str = _key(default="", doc="Where events are POSTed: an http:// or https:// URL (required).")
    name: str = _key(default="", doc="Short name for the API, the command line and the dashboard (a-z, 0-9, '-', "
                                     "'_'; at most 48). Empty: derived from the URL.")
    events: list = _key(default_factory=lambda: ["*"],
                        doc="Events to send: up, join, tx, txack, txconfirm, status, command, attendance, alert "
                            "(also the gateways' alive and rx), or \"*\" for all.")
    secret: str = _key(default="", secret=True,
                       doc="When set, every request carries X-Gatewayd-Signature: sha256=<hex HMAC-SHA256 of the "
                           "body with this secret>.")
    headers: dict = _key(default_factory=dict, secret=True,
                         doc="Extra request headers, e.g. { Authorization = \"Bearer ...\" }.")
    timeout: float = _key(default=10.0, min=0.1, max=300, doc="Seconds a request may take before it counts as failed.")
    max_age: float = _key(default=86400.0, min=1, max=30 * 86400,
                          doc="Seconds an event is retried (exponential backoff with jitter) before it is dropped "
                              "(a webhook.dropped record on /monitor/actions).")
    batch: bool = _key(default=False, doc="POST a JSON array of up to batch_max events instead of one event per "
                                          "request.")
    batch_max: int = _key(default=100, min=1, max=10_000, doc="Most events in one batched request.")


@dataclass
class MqttSettings:
    url: str = _key(default="", doc="The broker: mqtt://host:1883 or mqtts://host:8883. Empty: MQTT is off.")
    site: str = _key(default="", doc="This appliance's name in topics and bodies. Empty: the host name.")
    topic_prefix: str = _key(default="", doc="Prefix of every topic; {site} is replaced. Empty: gatewayd/{site}.")
    client_id: str = _key(default="", doc="MQTT client id. Empty: gatewayd-{site}.")
    protocol: str = _key(default="3.1.1", choices=("3.1.1", "5"), doc="MQTT protocol version.")
    username: str = _key(default="", doc="User name for the broker. Empty: none.")
    password_file: str = _key(default="",
                              doc="File holding the broker password (its first line), readable by gatewayd only.")
    ca_file: str = _key(default="", doc="CA certificates (PEM) that sign the broker's certificate (mqtts). "
                                        "Empty: the system's CAs.")
    cert_file: str = _key(default="", doc="Client certificate (PEM) for brokers that want one (mqtts).")
    key_file: str = _key(default="", doc="The client certificate's private key (PEM).")
    qos: int = _key(default=1, choices=(0, 1), doc="QoS of published events: 1 (at least once; the journal "
                                                   "cursor moves on PUBACK) or 0 (at most once).")
    keepalive: int = _key(default=30, min=5, max=3600, doc="Seconds between keep-alive pings; a broker silent "
                                                           "for this long is taken as gone.")
    max_inflight: int = _key(default=256, min=1, max=65535,
                             doc="Published messages waiting for their PUBACK at once (MQTT 5: at most the "
                                 "broker's Receive Maximum).")
    max_backlog_records: int = _key(default=5_000_000, min=1000, max=1_000_000_000, reload=True,
                                    doc="Journal records the broker may fall behind by. Beyond, the oldest are "
                                        "given up (a record on /monitor/actions says which) so retention can "
                                        "free the disk.")
    publish_rate: float = _key(default=1000.0, min=0, max=1_000_000, reload=True,
                               doc="Records per second while a backlog drains (0: as fast as the broker "
                                   "acknowledges). Live records are never held back.")
    connect_timeout: float = _key(default=10.0, min=1, max=300, doc="Seconds a connection attempt (TCP, TLS, "
                                                                    "CONNACK) may take.")
    reconnect_max: float = _key(default=60.0, min=1, max=3600,
                                doc="Longest wait between reconnection attempts (backoff from 1 s, doubling, "
                                    "with jitter).")
    commands: bool = _key(default=True, doc="Subscribe to the command/down topics (commands to devices and "
                                            "terminals).")


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
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    # [[webhooks]]: an array of tables, not a section (see _ENTRY_LISTS); reloadable.
    webhooks: list = field(default_factory=list, metadata={"internal": True})
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
        out["webhooks"] = [_entry_dict(w, redact) for w in self.webhooks]
        return out


def _entry_dict(entry: Any, redact: bool) -> dict[str, Any]:
    values = dataclasses.asdict(entry)
    if redact:
        for f in dataclasses.fields(entry):
            if f.metadata.get("secret") and values[f.name]:
                values[f.name] = "***"
    return values


def _sections() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings) if not f.metadata.get("internal")]

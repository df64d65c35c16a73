"""The services container handed to every transport and operation."""

from __future__ import annotations

import time
from typing import Any, Sequence

import trio

from . import access, backup, journal_ops, ops
from .history import ops as history_ops
from .comm_tables import CommTables
from .config import Settings
from .connections import ConnectionSet
from .connector import Connector
from .hub import Hub
from .journal.follow import CursorStore
from .history.service import HistoryService
from .journal.writer import JournalWriter
from .loopload import LoopLoad
from .metrics import Metrics
from .access import AccessService
from .state import State
from .web.sessions import Sessions


GROUND_OPERATIONS = ops.collect(access, journal_ops, backup, history_ops)
GROUND_SERVICES = (("compactor", journal_ops.Compactor), ("sessions", Sessions))


class Core:
    def __init__(self, settings: Settings, state: State, hub: Hub, writer: JournalWriter, *, online: bool,
                 connectors: Sequence[Connector]):
        self.settings = settings
        self.state = state
        self.hub = hub
        self.writer = writer
        self.online = online
        self.started = time.monotonic()
        self.metrics = Metrics()
        self.nursery: trio.Nursery | None = None
        self.stopping = trio.Event()
        self.connections = ConnectionSet()
        # The journal's readers (history, forwarders) and how far each has got; they hold back compaction.
        self.cursors = CursorStore(settings.state_path / "cursors")
        self.loop_load = LoopLoad()  # measures only once serve() installs it in the event loop
        self.access = AccessService(self)
        self.extras: dict[str, Any] = {}
        self.http_port: int | None = None
        # The state directory's JournalLock (open_core sets it); a child process that writes to the
        # state directory for the daemon holds it too.
        self.journal_lock = None
        self.connectors = tuple(connectors)
        self.operations = ops.table([*GROUND_OPERATIONS, *(spec for c in self.connectors for spec in c.operations)])
        # The connectors' monitoring mappers and TX handlers, merged (read-only from here on).
        self.comms = CommTables.of(self.connectors)
        self.services: dict[str, Any] = {}
        # The history projection (telemetry, punches, communications): ground floor, started first.
        self.history = self.services["history"] = HistoryService(self, self.comms.communications,
                                                                    self.comms.comm_mappers.keys())
        for name, factory in [*GROUND_SERVICES, *(s for c in self.connectors for s in c.services)]:
            if name in self.services:
                raise ValueError(f"service {name!r} is declared twice")
            self.services[name] = factory(self)
        self._register_gauges()

    def service(self, name: str) -> Any:
        return self.services[name]

    @property
    def journal_dir(self):
        return self.settings.state_path / "journal"

    def _register_gauges(self) -> None:
        w = self.writer.stats
        m = self.metrics
        m.gauge("gatewayd_journal_seq", "Last durable journal sequence number.", lambda: self.writer.durable_seq)
        m.gauge("gatewayd_journal_appends_total", "Records written to the journal.", lambda: w.appends)
        m.gauge("gatewayd_journal_fsyncs_total", "fsync calls (one per batch).", lambda: w.batches)
        m.gauge("gatewayd_journal_bytes_total", "Bytes written to the journal.", lambda: w.bytes)
        m.gauge("gatewayd_journal_fsync_seconds_total", "Time spent in fsync.", lambda: w.fsync_seconds)
        m.gauge("gatewayd_journal_fsync_seconds_max", "Longest fsync.", lambda: w.fsync_max)
        m.gauge("gatewayd_journal_write_errors_total", "Failed journal writes.", lambda: w.write_errors)
        m.gauge("gatewayd_journal_pending_bytes", "Bytes waiting to be written.", lambda: self.writer.pending_bytes)
        m.gauge("gatewayd_subscribers", "Live subscriptions to the record stream.", lambda: self.hub.subscriber_count)
        m.gauge("gatewayd_event_loop_busy_ratio", "Share of the last 0.25-0.5 s the event loop spent working "
                "rather than waiting for I/O (1: saturated).", self.loop_load.busy)
        m.gauge("gatewayd_uptime_seconds", "Seconds since start.", lambda: time.monotonic() - self.started)

"""Journal records as northbound events: what MQTT and webhooks hand on, one body per event.

`events_of(record, directory, zone, comms=core.comms)` is pure: the same record gives the same
events live and when a backlog is sent hours later (only the names looked up in `directory` may
have changed). Each
event has a subject (a device, a gateway or a terminal), a kind, and a JSON-ready body:

    {"seq": 812, "event_id": "812.0", "ts": "2026-06-12T09:15:30.123456Z", "event": "up",
     "device_id": "...", "name": "...", <the device's own data>, "comm": {<the monitoring envelope>}}

`ts` is the record's time (a backlog keeps its timestamps). `comm` is the object the
/monitor/communications stream shows for the same communication, or null for events that are not
communications (presence, command states). `event_id` is unique per appliance (one record may give
several events: a LoRaWAN uplink is one `rx` per gateway plus the device's `up`).

Every communication the monitoring stream shows appears in exactly one event: records this module
does not know (a connector added later) still give one event per communication, by its CommType.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timezone, tzinfo
from typing import Any, Callable, Iterable, Protocol

from ..comm_tables import CommTables
from ..journal.record import Record
from ..connectors.monitor.resiot import (COMM_GWALIVE, COMM_GWRX, COMM_GWTX, COMM_JOIN, COMM_RX, COMM_TX, COMM_TXCONFIRM,
                                         COMM_TXINFO, COMM_TXSENDACK, COMM_TXSENDCONFIRM, Communication, is_eui,
                                         to_envelope)

log = logging.getLogger("gatewayd.northbound")

DEVICE, GATEWAY, TERMINAL = "device", "gateway", "terminal"

# The event kinds of each subject (the last part of an MQTT topic, the `event` of a webhook).
EVENT_KINDS: dict[str, tuple[str, ...]] = {
    DEVICE: ("up", "join", "tx", "txack", "txconfirm", "status", "command"),
    GATEWAY: ("alive", "rx", "tx", "status"),
    TERMINAL: ("attendance", "status", "command"),
}

# A command that a northbound client sent and that was refused: journaled by the connector that got
# it, so the refusal reaches the client in order with everything else (as a `command` event).
COMMAND_REJECTED = "northbound.command_rejected"

# The CommType of a communication -> the device event it is, for records without their own builder.
_DEVICE_EVENT_OF = {COMM_RX: "up", COMM_JOIN: "join", COMM_TX: "tx", COMM_TXSENDACK: "txack",
                    COMM_TXCONFIRM: "txconfirm"}
# attendance.punches from this connector come from a device (XML dialect), not from a terminal.
_DEVICE_CONNECTOR = "ws"


@dataclass(frozen=True, slots=True)
class NorthboundEvent:
    subject: str  # DEVICE, GATEWAY or TERMINAL
    subject_id: str  # a device id, a gateway EUI (lower-case hex), a terminal serial number
    event: str  # one of EVENT_KINDS[subject]
    body: dict[str, Any]


class Directory(Protocol):
    """Names and ids the records do not carry (looked up at send time)."""

    def device_name(self, device_id: str) -> str | None: ...

    def device_id_of_eui(self, dev_eui: str) -> str | None: ...

    def terminal_name(self, sn: str) -> str | None: ...

    def gateway_name(self, eui: str) -> str | None: ...


class NoDirectory:
    def device_name(self, device_id: str) -> str | None:
        return None

    def device_id_of_eui(self, dev_eui: str) -> str | None:
        return None

    def terminal_name(self, sn: str) -> str | None:
        return None

    def gateway_name(self, eui: str) -> str | None:
        return None


class StateDirectory(NoDirectory):
    """Looks names up in the daemon's current state (parts that are absent answer None)."""

    def __init__(self, state):
        self._parts = state.parts

    def _entry(self, part: str, method: str, key: str) -> dict | None:
        holder = self._parts.get(part)
        return getattr(holder, method)(key) if holder is not None else None

    def device_name(self, device_id: str) -> str | None:
        device = self._entry("devices", "get", device_id)
        return device.get("name") if device else None

    def device_id_of_eui(self, dev_eui: str) -> str | None:
        session = self._entry("lorawan", "device", dev_eui)
        return session.get("device_id") if session else None

    def terminal_name(self, sn: str) -> str | None:
        terminal = self._entry("terminals", "get", sn)
        return terminal.get("name") if terminal else None

    def gateway_name(self, eui: str) -> str | None:
        gateway = self._entry("lorawan", "gateway", eui)
        return gateway.get("name") if gateway else None


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class _Events:
    """The events of one record under construction; each communication is used at most once."""

    def __init__(self, record: Record, directory: Directory, zone: tzinfo, site: str | None, comms: CommTables):
        self.record = record
        self.directory = directory
        self.zone = zone
        self.site = site
        self.out: list[NorthboundEvent] = []
        self._comms: list[Communication | None] = comms.communications(record)

    def comm(self, comm_type: str, where: Callable[[Communication], bool] | None = None) -> dict | None:
        """The envelope of the first unused communication of this type (None when there is none)."""
        for index, comm in enumerate(self._comms):
            if comm is not None and comm.comm_type == comm_type and (where is None or where(comm)):
                self._comms[index] = None
                return to_envelope(comm, self.zone)
        return None

    def add(self, subject: str, subject_id: str, event: str, ids: dict[str, Any], fields: dict[str, Any],
            comm: dict | None = None) -> None:
        record = self.record
        body: dict[str, Any] = {"seq": record.seq, "event_id": f"{record.seq}.{len(self.out)}", "ts": record.ts}
        if self.site is not None:
            body["site"] = self.site
        body["event"] = event
        body.update(ids)
        body.update(fields)
        body["comm"] = comm
        self.out.append(NorthboundEvent(subject, subject_id, event, body))

    # subjects ---------------------------------------------------------------------------------------
    def device(self, event: str, fields: dict[str, Any], comm: dict | None = None, *,
               device_id: str | None = None, dev_eui: str | None = None) -> None:
        data = self.record.data
        device_id = device_id or data.get("device_id")
        dev_eui = dev_eui or data.get("dev_eui")
        if not device_id and dev_eui:
            device_id = self.directory.device_id_of_eui(dev_eui)
        subject_id = device_id or dev_eui
        if not subject_id:
            return
        name = data.get("name") if data.get("device_id") == device_id else None
        ids = _present(device_id=device_id, dev_eui=dev_eui,
                       name=name or (self.directory.device_name(device_id) if device_id else None))
        self.add(DEVICE, subject_id, event, ids, fields, comm)

    def gateway(self, eui: str, event: str, fields: dict[str, Any], comm: dict | None = None) -> None:
        eui = eui.lower()
        self.add(GATEWAY, eui, event, _present(gateway_eui=eui, name=self.directory.gateway_name(eui)), fields, comm)

    def terminal(self, sn: str, event: str, fields: dict[str, Any], comm: dict | None = None) -> None:
        self.add(TERMINAL, sn, event, _present(sn=sn, name=self.directory.terminal_name(sn)), fields, comm)

    def leftover_communications(self) -> None:
        """One event per communication no builder used (record types this module does not know)."""
        for comm in self._comms:
            if comm is None:
                continue
            envelope = to_envelope(comm, self.zone)
            if comm.comm_type == COMM_GWALIVE:
                self.gateway(comm.dev_eui, "alive", {}, envelope)
            elif comm.comm_type == COMM_GWRX and comm.gateway_euis:
                self.gateway(comm.gateway_euis[0], "rx", {"dev_eui": envelope["DevEui"]}, envelope)
            elif comm.comm_type in (COMM_GWTX, COMM_TXINFO) and comm.gateway_euis:
                # a downlink handed to the gateway, then taken by gatewayd's gateway layer: two `tx` events
                self.gateway(comm.gateway_euis[0], "tx", _present(dev_eui=envelope["DevEui"], **comm.extra), envelope)
            elif comm.comm_type in _DEVICE_EVENT_OF:
                key = envelope["DevEui"]
                eui = key if is_eui(key) else None
                self.device(_DEVICE_EVENT_OF[comm.comm_type], {"connector": comm.connector}, envelope,
                            device_id=(eui and self.directory.device_id_of_eui(eui)) or key, dev_eui=eui)
        self._comms = []


Builder = Callable[[_Events], None]
_BUILDERS: dict[str, Builder] = {}


def _builds(*record_types: str):
    def register(fn: Builder) -> Builder:
        for record_type in record_types:
            _BUILDERS[record_type] = fn
        return fn
    return register


# -- WebSocket / HTTP devices ------------------------------------------------------------------------
@_builds("device.telemetry", "device.event")
def _device_uplink(ev: _Events) -> None:
    d = ev.record.data
    kind = ev.record.type.split(".", 1)[1]
    fields = _present(connector=d.get("connector"), type=kind, event_name=d.get("event"), payload=d.get("payload"),
                      msg_id=d.get("msg_id"), device_ts=d.get("device_ts"), dialect=d.get("dialect"))
    ev.device("up", fields, ev.comm(COMM_RX))


@_builds("device.connected")
def _device_join(ev: _Events) -> None:
    d = ev.record.data
    ev.device("join", _present(connector=d.get("connector"), dialect=d.get("dialect"), session=d.get("session"),
                               remote=d.get("remote")), ev.comm(COMM_JOIN))


@_builds("device.online", "device.offline")
def _device_status(ev: _Events) -> None:
    d = ev.record.data
    ev.device("status", _present(online=ev.record.type == "device.online", connector=d.get("connector"),
                                 reason=d.get("reason"), last_seen=d.get("last_seen")))


@_builds("command.queued", "command.sent", "command.acknowledged", "command.failed", "command.expired")
def _device_command(ev: _Events) -> None:
    d = ev.record.data
    state = ev.record.type.split(".", 1)[1]
    if state == "sent":
        ev.device("tx", _present(command_id=d["command_id"], command=d.get("command"), payload=d.get("payload"),
                                 reference=d.get("reference"), confirmed=bool(d.get("confirm"))), ev.comm(COMM_TX))
    txconfirm = ev.comm(COMM_TXCONFIRM) if state == "acknowledged" else None
    if txconfirm is not None:
        ev.device("txconfirm", _present(command_id=d["command_id"], reference=d.get("reference"),
                                        result=d.get("result")), txconfirm)
    ev.device("command", _present(state=state, command_id=d["command_id"], command=d.get("command"),
                                  payload=d.get("payload"), reference=d.get("reference"), source=d.get("source"),
                                  attempt=d.get("attempt"), expires_at=d.get("expires_at"), result=d.get("result"),
                                  error=d.get("error")))


# -- LoRaWAN ---------------------------------------------------------------------------------------------
def _best(copies: list[dict], key: str) -> Any:
    values = [c[key] for c in copies if c.get(key) is not None]
    return max(values) if values else None


@_builds("lorawan.uplink")
def _lorawan_uplink(ev: _Events) -> None:
    d = ev.record.data
    copies = d.get("gateways") or []
    radio = _present(datr=d.get("datr"), freq=d.get("freq"), dr=d.get("dr"))
    for copy in copies:
        eui = copy["eui"].lower()
        ev.gateway(eui, "rx", _present(dev_eui=d["dev_eui"], device_id=d.get("device_id"), rssi=copy.get("rssi"),
                                       snr=copy.get("snr"), channel=copy.get("chan"), tmst=copy.get("tmst"),
                                       phy=d.get("phy"), **radio),
                   ev.comm(COMM_GWRX, lambda c, eui=eui: c.gateway_euis[:1] == (eui,)))
    ev.device("up", _present(app_eui=d.get("app_eui"), dev_addr=d.get("dev_addr"), data=d.get("payload"),
                             fport=d.get("port"), fcnt=d.get("fcnt"), confirmed=d.get("confirmed"), adr=d.get("adr"),
                             ack=d.get("ack"), duplicate=d.get("duplicate"), **radio,
                             gateways=[c["eui"].lower() for c in copies], rssi=_best(copies, "rssi"),
                             snr=_best(copies, "snr")),
              ev.comm(COMM_RX))
    acked = d.get("acked")
    if acked is not None:
        ev.device("txconfirm", _present(command_id=acked.get("command_id"), reference=acked.get("reference")),
                  ev.comm(COMM_TXCONFIRM))
        ev.device("command", _present(state="acknowledged", command_id=acked.get("command_id"),
                                      reference=acked.get("reference")))
    unacked = d.get("unacked")
    if unacked and not unacked.get("requeued"):
        ev.device("command", _present(state="failed", command_id=unacked.get("command_id"),
                                      reference=unacked.get("reference"), error="not acknowledged by the device"))
    _failed_commands(ev, d.get("failed") or ())
    downlink = d.get("downlink")
    if downlink is not None and downlink.get("command_id"):
        fields = _present(command_id=downlink["command_id"], reference=downlink.get("reference"),
                          fport=downlink.get("port"), data=downlink.get("payload"),
                          confirmed=downlink.get("confirmed"), fcnt_down=downlink.get("fcnt"),
                          gateway_eui=downlink.get("gateway"), window=downlink.get("window"))
        ev.device("tx", fields, ev.comm(COMM_TX))
        ev.device("command", {"state": "sent", **fields})


def _failed_commands(ev: "_Events", failed_list) -> None:
    """Downlink requests given up: `command` `failed`, carrying their comm_txsendconfirm."""
    for failed in failed_list:
        ev.device("command", _present(state="failed", command_id=failed.get("command_id"),
                                      reference=failed.get("reference"), error=failed.get("reason")),
                  ev.comm(COMM_TXSENDCONFIRM, lambda c, f=failed: c.extra.get("command_id") == f.get("command_id")))


@_builds("lorawan.downlink_failed")
def _lorawan_downlink_failed(ev: _Events) -> None:
    _failed_commands(ev, ev.record.data.get("failed") or ())


@_builds("lorawan.join", "lorawan.join_refused")
def _lorawan_join(ev: _Events) -> None:
    d = ev.record.data
    accepted = ev.record.type == "lorawan.join"
    copies = d.get("gateways") or []
    fields = _present(app_eui=d.get("app_eui"), accepted=accepted, dev_addr=d.get("dev_addr") if accepted else None,
                      reason=None if accepted else d.get("reason"), dev_nonce=d.get("dev_nonce"),
                      datr=d.get("datr"), freq=d.get("freq"), gateways=[c["eui"].lower() for c in copies],
                      rssi=_best(copies, "rssi"), snr=_best(copies, "snr"))
    ev.device("join", fields, ev.comm(COMM_JOIN))  # (the record's sealed session keys are never included)


@_builds("lorawan.downlink_queued")
def _lorawan_queued(ev: _Events) -> None:
    d = ev.record.data
    ev.device("command", _present(state="queued", command_id=d.get("command_id"), fport=d.get("port"),
                                  data=d.get("payload"), confirmed=d.get("confirm"), reference=d.get("reference"),
                                  source=d.get("source")))


@_builds("gateway.alive")
def _gateway_alive(ev: _Events) -> None:
    d = ev.record.data
    ev.gateway(d["eui"], "alive", _present(kind=d.get("kind"), addr=d.get("addr"), version=d.get("version"),
                                           stat=d.get("stat")), ev.comm(COMM_GWALIVE))
    if d.get("came_online"):
        ev.gateway(d["eui"], "status", _present(online=True, addr=d.get("addr")))


@_builds("gateway.offline")
def _gateway_offline(ev: _Events) -> None:
    d = ev.record.data
    ev.gateway(d["eui"], "status", _present(online=False, last_seen=d.get("last_seen")))


@_builds("gateway.tx_ack")
def _gateway_tx_ack(ev: _Events) -> None:
    d = ev.record.data
    error = d.get("error") or "NONE"
    fields = _present(gateway_eui=d["gateway"].lower(), ok=error == "NONE", error=None if error == "NONE" else error,
                      kind=d.get("kind"), command_id=d.get("command_id"), reference=d.get("reference") or None)
    comm = ev.comm(COMM_TXSENDACK)
    if d.get("device_id") or d.get("dev_eui"):
        ev.device("txack", fields, comm)
    elif comm is not None:
        ev.gateway(d["gateway"], "status", fields, comm)
    outcome = ev.comm(COMM_TXSENDCONFIRM)  # a downlink request's outcome: on air, queued again, or failed
    if outcome is not None:
        state = {"sent": "transmitted", "queued again": "queued"}.get(outcome["Extra"].get("outcome"), "failed")
        ev.device("command", _present(state=state, command_id=d.get("command_id"), reference=d.get("reference") or None,
                                      gateway_eui=d["gateway"].lower(),
                                      error=None if error == "NONE" else error), outcome)


# -- attendance terminals -----------------------------------------------------------------------------
@_builds("terminal.registered")
def _terminal_registered(ev: _Events) -> None:
    d = ev.record.data
    ev.terminal(d["sn"], "status", _present(registered=True, status=d.get("status"), connector=d.get("connector"),
                                            cpusn=d.get("cpusn"), devinfo=d.get("devinfo")), ev.comm(COMM_JOIN))


@_builds("terminal.online", "terminal.offline")
def _terminal_presence(ev: _Events) -> None:
    d = ev.record.data
    ev.terminal(d["sn"], "status", _present(online=ev.record.type == "terminal.online", connector=d.get("connector"),
                                            reason=d.get("reason"), last_seen=d.get("last_seen")))


@_builds("attendance.punches")
def _attendance(ev: _Events) -> None:
    d = ev.record.data
    punches = [{k: v for k, v in p.items() if k not in ("image", "key_time")} for p in d.get("punches") or ()]
    fields = _present(connector=d.get("connector"), punches=punches, count=len(punches), tz=d.get("tz"),
                      held=bool(d.get("held")), logindex=d.get("logindex"))
    if d.get("connector") == _DEVICE_CONNECTOR:  # a device (XML dialect) that sends punches
        ev.device("up", {"type": "attendance", **fields}, ev.comm(COMM_RX), device_id=d["source"])
    else:
        ev.terminal(d["source"], "attendance", fields, ev.comm(COMM_RX))


@_builds("terminal.command_queued", "terminal.command_sent", "terminal.command_acknowledged",
         "terminal.command_failed", "terminal.command_expired")
def _terminal_command(ev: _Events) -> None:
    d = ev.record.data
    state = ev.record.type.rsplit("_", 1)[1]
    comm = ev.comm(COMM_TX) if state == "sent" else ev.comm(COMM_TXCONFIRM) if state == "acknowledged" else None
    ev.terminal(d["sn"], "command", _present(state=state, command_id=d.get("command_id"), command=d.get("command"),
                                             params=d.get("params"), reference=d.get("reference") or None,
                                             source=d.get("source"), attempt=d.get("try"), result=d.get("result"),
                                             error=d.get("reason")), comm)


# -- refusals of northbound commands ----------------------------------------------------------------------
@_builds(COMMAND_REJECTED)
def _command_rejected(ev: _Events) -> None:
    d = ev.record.data
    fields = _present(state="rejected", error=d.get("error"), source=d.get("source"), request=d.get("request"))
    if d.get("subject") == TERMINAL:
        ev.terminal(d["id"], "command", fields)
    else:
        ev.device("command", fields, device_id=d["id"])


# -- entry points -------------------------------------------------------------------------------------------
_NO_DIRECTORY = NoDirectory()
_FAILED_TYPES: set[str] = set()


def events_of(record: Record, directory: Directory = _NO_DIRECTORY, zone: tzinfo = timezone.utc, *,
              comms: CommTables, site: str | None = None) -> list[NorthboundEvent]:
    """The northbound events of one journal record, in a fixed order (often none). `comms`: the
    connectors' mappers (core.comms), for the communications the record is."""
    builder = _BUILDERS.get(record.type)
    if builder is None and record.type not in comms.comm_mappers:
        return []
    try:
        ev = _Events(record, directory, zone, site, comms)
        if builder is not None:
            builder(ev)
        ev.leftover_communications()
    except Exception:
        # A record this code cannot read must not stop a forwarder for good: it is skipped, loudly
        # the first time per record type (repeats would flood the log).
        if record.type not in _FAILED_TYPES:
            _FAILED_TYPES.add(record.type)
            log.exception("northbound: no events for %s record %d (later failures of this type are logged "
                          "at debug level)", record.type, record.seq)
        else:
            log.debug("northbound: no events for %s record %d", record.type, record.seq)
        return []
    return ev.out


def may_have_events(record_type: str, comms: CommTables) -> bool:
    """False for records that never give an event (most of the journal): a quick filter."""
    return record_type in _BUILDERS or record_type in comms.comm_mappers


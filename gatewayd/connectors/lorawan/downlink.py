"""Class A downlinks: the per-device queue, what goes out after an uplink, and gateway TX_ACKs.

After each uplink the head of the device's queue (and the ACK of a confirmed uplink) goes out in
RX1 (uplink tmst + rx1_delay, same frequency and data rate) through the copy's gateway with the
best SNR that has a downlink path; RX2 (+1 s, the region's RX2 frequency and data rate) when RX1
can no longer be met. A confirmed downlink waits for the device's ACK in its next uplink; without
it the command goes out again, up to lorawan.confirm_attempts times in all, then fails.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import trio

from ...journal.writer import JournalUnavailable
from ...ops import OpError
from . import mac, regions
from .mac import MacOutcome
from .mac_commands import encode_all
from . import gwmp, frames as lorawan
from . import packets
from .frames import MType
from ...errors import ProtocolError

log = logging.getLogger("gatewayd.lorawan.downlink")

MAX_QUEUE = 32
MAX_FOPTS_LEN = lorawan.MAX_FOPTS_LEN
SEND_MARGIN = 0.1  # seconds before the window opens by which the PULL_RESP must be on its way
TX_ACK_WAIT = 30.0  # how long a PULL_RESP token is remembered for its TX_ACK
MAX_TRACKED = 4096


@dataclass
class Transmission:
    """One PULL_RESP (or a Station `dnmsg`, sent through `link`) to send once the record that
    decided it is durable."""

    gateway: str
    addr: tuple | None
    datagram: bytes | str
    token: int | None  # None: a version 1 gateway, which sends no TX_ACK
    track: dict[str, Any] = field(default_factory=dict)
    link: Any = None


@dataclass
class Window:
    name: str  # "RX1" | "RX2" | "JA1" | "JA2"
    delay: float  # seconds after the uplink's tmst
    freq: float
    dr: int
    then: "Window | None" = None  # RX1's RX2, for gateways that take both and fall back themselves


def best_first(copies) -> list:
    """Copies ordered by SNR, then RSSI, best first."""
    copies = list(copies)
    if len(copies) == 1:
        return copies
    return sorted(copies, key=lambda c: (c.rx.lsnr if c.rx.lsnr is not None else -99.0, c.rx.rssi), reverse=True)


class Downlinks:
    def __init__(self, service):
        self.service = service
        self.core = service.core
        self._tracked: OrderedDict[tuple[str, int], tuple[float, dict[str, Any]]] = OrderedDict()

    @property
    def region(self) -> regions.Region:
        return self.service.region

    # -- choosing the gateway and the window ----------------------------------------------------------
    def reachable(self, copies) -> bool:
        """Can any gateway that heard this uplink transmit now?"""
        downlink_path = self.service.gateways.downlink_path
        return any(downlink_path(copy.gateway) is not None for copy in copies)

    def rx_windows(self, mac_state: dict[str, Any] | None) -> tuple[float, int, float, int]:
        """(RX1 delay s, RX1DROffset, RX2 MHz, RX2 DR) the device uses (its MAC state, else the defaults)."""
        rx2_freq, rx2_dr = regions.rx2(self.region)
        if mac_state is None:
            return self.service.rx1_delay, 0, rx2_freq, rx2_dr
        delay = mac_state["rx1_delay"] or self.service.rx1_delay
        freq = mac_state["rx2_freq"] / 1_000_000 if mac_state["rx2_freq"] is not None else rx2_freq
        dr = mac_state["rx2_dr"] if mac_state["rx2_dr"] is not None else rx2_dr
        return delay, mac_state["rx1_dr_offset"], freq, dr

    def route(self, copies, uplink_dr: int, now: float, join: bool,
              mac_state: dict[str, Any] | None = None) -> tuple[Any, Any, Window] | None:
        """(copy, downlink path, window) for the reply to an uplink, or None when none can be met."""
        cfg = self.core.settings.lorawan
        rx1_delay, offset, rx2_freq, rx2_dr = self.rx_windows(None if join else mac_state)
        first_delay = cfg.join_accept_delay if join else rx1_delay
        gateways = self.service.gateways
        for copy in best_first(copies):
            path = gateways.downlink_path(copy.gateway)
            if path is None or (path.link is None) != (copy.context is None):
                continue  # no downlink path, or not the one this copy was heard through
            rx2 = Window("JA2" if join else "RX2", first_delay + 1.0, rx2_freq, rx2_dr)
            try:
                rx1_freq, rx1_dr = regions.rx1(self.region, copy.rx.freq, uplink_dr, offset)
                options: tuple[Window, ...] = (Window("JA1" if join else "RX1", first_delay, rx1_freq, rx1_dr, rx2), rx2)
            except ProtocolError:  # not one of the band's channels: only RX2 is known
                options = (rx2,)
            for window in options:
                if now + SEND_MARGIN < copy.arrived + window.delay:
                    return copy, path, window
            return None  # too late for the best gateway is too late for all of them
        return None

    def txpk(self, copy, window: Window, phy: bytes) -> packets.TxPacket:
        return packets.TxPacket(
            imme=False, tmst=(copy.rx.tmst + int(window.delay * 1_000_000)) & 0xFFFF_FFFF,
            freq=window.freq, rfch=0, powe=self.service.tx_power, modu="LORA",
            datr=regions.data_rate(self.region, window.dr).datr, codr=copy.rx.codr or self.region.coding_rate,
            ipol=True, data=phy)

    @staticmethod
    def new_token(path) -> int | None:
        """A PULL_RESP token for TX_ACK matching; None for a version 1 gateway (it sends no TX_ACK)."""
        return secrets.randbelow(0x10000) if path.version >= 2 else None

    @staticmethod
    def make_transmission(gateway: str, path, txpk: packets.TxPacket, token: int | None,
                          track: dict[str, Any]) -> Transmission:
        return Transmission(gateway, path.addr, gwmp.pull_resp(path.version, token or 0, txpk), token, track)

    def transmission(self, copy, path, window: Window, phy: bytes, track: dict[str, Any]) -> tuple[Transmission, dict]:
        if path.link is not None:
            return path.link.transmission(copy, window, phy, track)
        token = self.new_token(path)
        txpk = self.txpk(copy, window, phy)
        where = {"gateway": copy.gateway, "window": window.name, "tmst": txpk.tmst, "freq": txpk.freq,
                 "datr": txpk.datr, "token": token, "size": len(phy)}
        return self.make_transmission(copy.gateway, path, txpk, token, track), where

    # -- after an uplink -------------------------------------------------------------------------------
    def plan(self, session: dict[str, Any], frame: lorawan.DataFrame, keys: tuple[bytes, bytes], copies,
             uplink_dr: int, duplicate: bool, now: float,
             mac_outcome: MacOutcome | None = None) -> tuple[dict[str, Any], Transmission | None]:
        """Fields to add to the uplink record, and the PULL_RESP to send once it is durable.

        Mirrors the order the state applies them in: the pending confirmation first, then the
        commands that can never fit, then the downlink itself. MAC answers and requests ride in
        FOpts of an application downlink, or alone on FPort 0.
        """
        fields: dict[str, Any] = {}
        awaiting = session["awaiting_ack"]
        mac_commands = mac_outcome.commands if mac_outcome is not None else []
        must_reply = frame.confirmed or (mac_outcome is not None and mac_outcome.must_reply)
        if not session["queue"] and awaiting is None and not must_reply and not mac_commands:
            return fields, None  # the common case: nothing to say to the device
        queue = list(session["queue"])
        if awaiting is not None and not duplicate:
            brief = {"command_id": awaiting["command_id"], "reference": awaiting.get("reference", "")}
            if frame.ack:
                fields["acked"] = brief
            else:
                requeued = awaiting.get("attempts", 1) < self.core.settings.lorawan.confirm_attempts
                fields["unacked"] = dict(brief, requeued=requeued, attempts=awaiting.get("attempts", 1))
                if requeued:
                    queue.insert(0, awaiting)
        mac_state = mac_outcome.window_state if mac_outcome is not None else session["mac"]
        route = self.route(copies, uplink_dr, now, join=False, mac_state=mac_state)
        if route is None:
            if queue or must_reply or mac_commands:
                self.core.metrics.inc("gatewayd_lorawan_downlink_missed_total", reason="no_path_or_too_late")
            return fields, None
        copy, path, window = route
        offset = mac_state["rx1_dr_offset"]
        rx1_limit = regions.max_payload(self.region, window.dr if window.name == "RX2"
                                        else regions.rx1(self.region, copy.rx.freq, uplink_dr, offset)[1])
        window_limit = regions.max_payload(self.region, window.dr)
        failed = []
        head = None
        for command in queue:
            size = len(command["payload"]) // 2
            if size > rx1_limit:
                failed.append({"command_id": command["command_id"], "reference": command.get("reference", ""),
                               "reason": f"payload of {size} bytes does not fit the device's data rate DR{uplink_dr} "
                                         f"(at most {rx1_limit} bytes)"})
                continue
            if size <= window_limit:
                head = command
            break
        if failed:
            fields["failed"] = failed
        if head is not None:
            payload = bytes.fromhex(head["payload"])
            port: int | None = head["port"]
            sent_mac = mac.pack(mac_commands, min(MAX_FOPTS_LEN, window_limit - len(payload)))
            f_opts = encode_all(sent_mac)
        else:
            sent_mac = mac.pack(mac_commands, window_limit)
            if not sent_mac and not must_reply:
                return fields, None
            payload, port, f_opts = encode_all(sent_mac), (0 if sent_mac else None), b""
        remaining = [c for c in queue if c is not head and c["command_id"] not in {f["command_id"] for f in failed}]
        nwk, app = keys
        confirm = bool(head and head.get("confirm"))
        fcnt = session["fcnt_down"]
        try:
            phy = lorawan.build_data_frame(MType.CONFIRMED_DATA_DOWN if confirm else MType.UNCONFIRMED_DATA_DOWN,
                                           frame.dev_addr, fcnt, nwk, app, f_port=port, payload=payload,
                                           ack=frame.confirmed, f_pending=bool(remaining), f_opts=f_opts)
        except ProtocolError as exc:
            log.error("downlink to %s not built: %s", session["dev_eui"], exc.message)
            return fields, None
        track = self.track_fields(session, head)
        transmission, where = self.transmission(copy, path, window, phy, track)
        fields["downlink"] = {
            "fcnt": fcnt, "confirmed": confirm, "ack": frame.confirmed, "f_pending": bool(remaining),
            "port": port, "payload": head["payload"] if head else "", "command_id": track["command_id"],
            "reference": track["reference"], **where,
        }
        if head and head.get("window"):
            fields["downlink"]["asked_window"] = head["window"]
        if sent_mac:
            fields["downlink"]["mac"] = [c.as_dict() for c in sent_mac]
        return fields, transmission

    @staticmethod
    def track_fields(session: dict[str, Any], head: dict[str, Any] | None) -> dict[str, Any]:
        track = {"kind": "downlink", "dev_eui": session["dev_eui"], "device_id": session["device_id"],
                 "command_id": head["command_id"] if head else None,
                 "reference": head.get("reference", "") if head else ""}
        if head is not None:
            # Everything needed to queue the command again if the gateway cannot send it.
            track["command"] = {k: head[k] for k in ("command_id", "port", "payload", "confirm", "reference",
                                                     "source", "queued", "attempts", "window") if k in head}
        return track

    # -- sending and TX_ACK ------------------------------------------------------------------------------
    async def send(self, transmissions: list[Transmission]) -> None:
        transmit = self.service.transmit
        for tx in transmissions:
            if tx.link is None and transmit is None:
                continue
            if tx.token is not None:
                self._track(tx.gateway, tx.token, dict(tx.track, _addr=tx.addr))
            if tx.link is not None:
                tx.link.send(tx)
            else:
                await transmit(tx.datagram, tx.addr)
            self.core.metrics.inc("gatewayd_lorawan_downlinks_total", kind=tx.track.get("kind", "downlink"))

    def _track(self, gateway: str, token: int, track: dict[str, Any]) -> None:
        now = trio.current_time()
        self._tracked[(gateway, token)] = (now + TX_ACK_WAIT, track)
        while self._tracked:
            key, (until, _) = next(iter(self._tracked.items()))
            if until > now and len(self._tracked) <= MAX_TRACKED:
                break
            del self._tracked[key]

    async def tx_ack(self, ack: gwmp.TxAck, addr: tuple) -> None:
        key = (ack.gateway_eui, ack.token)
        entry = self._tracked.get(key)
        error = ack.error or "NONE"
        self.core.metrics.inc("gatewayd_lorawan_tx_ack_total", error=error if error in gwmp.TX_ACK_ERRORS else "other")
        if entry is None or entry[1]["_addr"] is None or entry[1]["_addr"][0] != addr[0]:
            self.core.metrics.inc("gatewayd_lorawan_tx_ack_unmatched_total")  # not from where the PULL_RESP went
            return
        await self._report(key, error, ack.warn)

    async def delivered(self, gateway: str, token: int) -> None:
        """A Station gateway reports a downlink on air (`dntxed`; it reports no failures)."""
        self.core.metrics.inc("gatewayd_lorawan_tx_ack_total", error="NONE")
        if (gateway, token) not in self._tracked:
            self.core.metrics.inc("gatewayd_lorawan_tx_ack_unmatched_total")
            return
        await self._report((gateway, token), "NONE", None)

    async def _report(self, key: tuple[str, int], error: str, warn: str | None) -> None:
        """Journal the gateway's answer about a tracked transmission."""
        _, track = self._tracked.pop(key)
        gateway, token = key
        data = {"gateway": gateway, "token": token, "error": error[:32],
                **{k: v for k, v in track.items() if k != "_addr"}}
        if error == "NONE":
            data.pop("command", None)  # only a refused command goes back into the queue
        if warn:
            data["warn"] = warn[:32]
        try:
            await self.core.hub.publish("gateway.tx_ack", data, durable=error != "NONE" and "command" in data)
        except (JournalUnavailable, trio.TooSlowError) as exc:
            log.error("TX_ACK of %s not recorded: %s", gateway, exc)
            return
        if "command" in data and data.get("dev_eui"):
            self.service.class_c.wake(data["dev_eui"])  # back in the queue: a class C device gets it again

    # -- the queue (TX requests) -------------------------------------------------------------------------
    async def enqueue(self, dev_eui: str, port: int, payload: bytes, *, confirm: bool = False,
                      reference: str = "", source: str = "", window: str = "BOTH") -> dict[str, Any]:
        session = self.core.state.lorawan.device(dev_eui)
        if session is None:
            raise OpError("not_found", f"no LoRaWAN device with DevEUI {dev_eui}", 404)
        if not session["enabled"]:
            raise OpError("disabled", f"device {dev_eui} is disabled", 409)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 223:
            raise OpError("invalid", f"Port {port} is not a LoRaWAN application port (1 to 223)", 422)
        dr, heard = self.downlink_dr(session)
        limit = regions.max_payload(self.region, dr)
        if len(payload) > limit:
            rate = regions.data_rate(self.region, dr).datr
            raise OpError("too_long", f"Payload is {len(payload)} bytes but device {dev_eui} receives at DR{dr} "
                                      f"({rate}, {heard}) where a downlink carries at most {limit} bytes", 422)
        if len(session["queue"]) >= MAX_QUEUE:
            raise OpError("queue_full", f"device {dev_eui} already has {MAX_QUEUE} downlinks waiting", 409)
        if not isinstance(reference, str) or len(reference) > 128:
            raise OpError("invalid", "Reference must be a string of at most 128 characters", 422)
        command_id = uuid.uuid4().hex
        data = {"dev_eui": dev_eui, "device_id": session["device_id"], "command_id": command_id, "port": port,
                "payload": payload.hex(), "confirm": bool(confirm), "reference": reference, "source": source[:64]}
        if window != "BOTH":  # the receive window the request asked for, echoed on comm_tx
            data["window"] = window
        try:
            await self.core.hub.publish("lorawan.downlink_queued", data)
        except JournalUnavailable:
            raise OpError("journal_unavailable", "the journal cannot write right now; retry shortly", 503) from None
        if session["settings"]["class"] == "C":
            self.service.class_c.wake(dev_eui)
        return {"command_id": command_id, "dev_eui": dev_eui, "port": port, "confirm": bool(confirm),
                "reference": reference, "queued": len(session["queue"])}

    def downlink_dr(self, session: dict[str, Any]) -> tuple[int, str]:
        """The data rate the device's next downlink will most likely use, and why."""
        _, offset, _, rx2_dr = self.rx_windows(session["mac"])
        if session["settings"]["class"] == "C":
            return rx2_dr, "class C: RX2"
        if session["last_dr"] is None:
            return rx2_dr, "no uplink yet: RX2"
        try:
            return regions.rx1(self.region, session["last_freq"], session["last_dr"], offset)[1], "RX1 after its last uplink"
        except ProtocolError:
            return rx2_dr, "RX2"


class LorawanTxHandler:
    """Contract F: TX requests for connector "lorawan" (monitoring socket and POST /api/tx)."""

    connector = "lorawan"

    def owns(self, core, dev_key: str) -> bool:
        part = getattr(core.state, "lorawan", None)
        return part is not None and part.device(dev_key) is not None

    async def submit(self, core, dev_key: str, tx) -> None:
        await core.service("lorawan").downlinks.enqueue(
            dev_key, tx.port, tx.payload, confirm=tx.confirm, reference=tx.reference, source="tx",
            window=tx.window)

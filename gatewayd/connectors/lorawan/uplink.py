"""Uplinks: from a gateway's rxpk to one `lorawan.uplink` record.

Each copy is parsed at once (junk is dropped before it takes memory) and joins the dedup window of
its frame. When the window closes the frame is decided: the sessions sharing the DevAddr are tried
(MIC), the full FCnt is rebuilt and checked, the payload decrypted, and a downlink planned. The
frames decided together in one pass concern different devices; their records are published
together, with one durability wait when anything is to be transmitted, and only then is it sent.

FCnt rules (LoRaWAN 1.0.x, PROTOCOLS.md section 7): a counter >= the next expected one is new
(at most MAX_FCNT_GAP ahead); exactly next - 1 is a retransmission (journaled with
duplicate=true: its copies and ACK still matter); an older counter is a replay and dropped, unless
the device has relaxed counters (an ABP device that restarted at 0), which then restarts its count.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import trio

from ...journal.writer import JournalUnavailable
from ...logs import RateLimitedLogger
from ...ratelimit import TokenBucket
from . import mac, mac_commands, regions
from . import frames as lorawan, packets
from ...errors import ProtocolError
from ...secretbox import SecretBoxError
from .dedup import Copy, Deduper, Pending
from .downlink import Transmission, best_first

log = logging.getLogger("gatewayd.lorawan")

PASS_GRANULARITY = 0.005  # seconds
COPIES = ("gatewayd_lorawan_copies_total", ())
UPLINKS_NEW = ("gatewayd_lorawan_uplinks_total", (("status", "new"),))
UPLINKS_AGAIN = ("gatewayd_lorawan_uplinks_total", (("status", "retransmission"),))


@dataclass
class Decision:
    type: str
    data: dict[str, Any]
    transmission: Transmission | None = None


def copy_fields(copy: Copy) -> dict[str, Any]:
    rx = copy.rx
    out = {"eui": copy.gateway, "rssi": rx.rssi, "snr": rx.lsnr, "tmst": rx.tmst, "chan": rx.chan,
           "rfch": rx.rfch}
    if rx.time:
        out["time"] = rx.time[:40]
    return out


def _reception_time(copy: Copy, now: float) -> float:
    """Unix time of the reception: the gateway's GPS-disciplined `time` when it gives one, else ours
    (the copy arrived `trio.current_time() - copy.arrived` seconds ago)."""
    stamp = copy.rx.time
    if stamp:
        try:
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
        except ValueError:
            pass
    return now - max(0.0, trio.current_time() - copy.arrived)


def radio_fields(pending: Pending) -> tuple[list[Copy], dict[str, Any]]:
    copies = best_first(pending.copies.values())
    best = copies[0].rx
    return copies, {"dr": pending.dr, "datr": best.datr, "freq": best.freq, "codr": best.codr,
                    "gateways": [copy_fields(c) for c in copies]}


class Network:
    def __init__(self, service):
        self.service = service
        self.core = service.core
        cfg = self.core.settings.lorawan
        self.dedup = Deduper(cfg.dedup_window_ms / 1000, hold=service.rx1_delay + 1.0)
        self._wake = trio.Event()
        self.allocated_in_pass: set[str] = set()  # DevAddrs given to joins not yet applied
        self._rlog = RateLimitedLogger(log, 60.0)
        foreign_rate = cfg.foreign_frames_per_second
        self._foreign = TokenBucket(foreign_rate, 2 * foreign_rate, trio.current_time()) if foreign_rate else None
        metrics = self.core.metrics
        metrics.describe("gatewayd_lorawan_uplinks_total", "Accepted LoRaWAN uplinks (status new or retransmission).")
        metrics.describe("gatewayd_lorawan_dropped_total", "LoRaWAN frames or datagrams dropped, by reason.")
        metrics.describe("gatewayd_lorawan_copies_total", "Gateway copies of LoRaWAN frames received.")

    def drop(self, reason: str, key: str, message: str, *args: Any) -> None:
        self.core.metrics.inc("gatewayd_lorawan_dropped_total", reason=reason)
        self._rlog.info(f"{reason}:{key}", message, *args)

    # -- receiving copies ----------------------------------------------------------------------------
    def receive(self, gateway: str, rx: packets.RxPacket, now: float, context: Any = None) -> None:
        """One rxpk of an admitted gateway (synchronous: it only parses and files the copy).
        `context`: a Station gateway's answer details for this copy."""
        metrics = self.core.metrics
        metrics.counters[COPIES] += 1  # the hot path skips inc()'s label handling
        if rx.stat != 1:
            self.core.metrics.inc("gatewayd_lorawan_dropped_total", reason="crc")
            return
        if rx.modu != "LORA":
            self.drop("modulation", gateway, "gateway %s: %s frames are not handled", gateway, rx.modu)
            return
        try:
            dr = regions.dr_from_datr(self.service.region, rx.datr)
            frame = lorawan.parse_phy(rx.data)
        except ProtocolError as exc:
            self.drop("malformed_phy", gateway, "gateway %s: frame dropped: %s", gateway, exc.message)
            return
        if not frame.uplink:
            self.drop("not_uplink", gateway, "gateway %s forwarded a %s frame", gateway, frame.mtype.label)
            return
        outcome = self.dedup.offer(rx.data, frame, dr, Copy(gateway, rx, now, context))
        if outcome == "new":
            self._wake.set()
        elif outcome == "late":
            metrics.inc("gatewayd_lorawan_dropped_total", reason="late_copy")
        elif outcome == "full":
            self.drop("overload", "dedup", "dedup table full (%d frames open); frame dropped", len(self.dedup))

    # -- deciding ------------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            deadline = self.dedup.next_deadline()
            if deadline is None:
                self._wake = trio.Event()
                await self._wake.wait()  # idle until a frame arrives: nothing else can be due
                continue
            # A little past the deadline, so that one pass takes every frame due about then.
            await trio.sleep_until(deadline + PASS_GRANULARITY)
            due = self.dedup.pop_due(trio.current_time())
            if due:
                await self.decide_pass(due)

    async def decide_pass(self, due: list[Pending]) -> None:
        """Decide the frames whose window closed, publishing their records together.

        Decisions about different devices do not depend on each other. A second frame for a
        device already decided in this batch needs the first one applied: the batch is published
        first (so even a flood of frames for one DevAddr costs linear time)."""
        decisions: list[Decision] = []
        touched: set[str] = set()
        self.allocated_in_pass = set()
        for pending in due:
            devices = self._devices_of(pending)
            if any(d in touched for d in devices):
                await self._publish(decisions)
                decisions, touched = [], set()
                self.allocated_in_pass = set()
            touched.update(devices)
            decision = self._decide_safely(pending)
            if decision is not None:
                decisions.append(decision)
        await self._publish(decisions)

    def _devices_of(self, pending: Pending):
        frame = pending.frame
        if isinstance(frame, lorawan.JoinRequest):
            return (frame.dev_eui,)
        return self.core.state.lorawan.by_addr.get(f"{frame.dev_addr:08x}", ())

    def _decide_safely(self, pending: Pending) -> Decision | None:
        try:
            return self.decide(pending, trio.current_time())
        except SecretBoxError as exc:
            self.drop("unreadable_keys", "keys", "LoRaWAN frame dropped: %s", exc)
        except Exception:
            self.core.metrics.inc("gatewayd_lorawan_dropped_total", reason="internal")
            log.exception("LoRaWAN frame could not be decided")
        return None

    async def _publish(self, decisions: list[Decision]) -> None:
        """Journal decisions; transmit only once the records that decided the transmissions are durable."""
        if not decisions:
            return
        transmissions = [d.transmission for d in decisions if d.transmission is not None]
        hub = self.core.hub
        try:
            if transmissions:
                await hub.publish_many([(d.type, d.data) for d in decisions])
            else:
                for d in decisions:
                    await hub.publish(d.type, d.data, durable=False)
        except (JournalUnavailable, trio.TooSlowError) as exc:
            self.drop("journal_unavailable", "journal", "LoRaWAN records not durable; nothing sent: %s", exc)
            return
        if transmissions:
            await self.service.downlinks.send(transmissions)

    def decide(self, pending: Pending, now: float) -> Decision | None:
        if isinstance(pending.frame, lorawan.JoinRequest):
            return self.service.joins.decide(pending, now)
        return self.decide_uplink(pending, now)

    def foreign(self, pending: Pending, reason: str, now: float) -> Decision | None:
        """A frame of a device that is not ours: not accepted, but recorded (not durably) so the
        monitor shows it as comm_gwrx with Mine "false", within lorawan.foreign_frames_per_second."""
        if self._foreign is None or not self._foreign.take(now):
            return None
        frame: lorawan.DataFrame = pending.frame
        _, radio = radio_fields(pending)
        return Decision("lorawan.foreign_uplink", {
            "dev_addr": f"{frame.dev_addr:08x}", "reason": reason, "mtype": frame.mtype.label,
            "fcnt": frame.f_cnt16, "phy": pending.phy.hex(), **radio})

    def decide_uplink(self, pending: Pending, now: float) -> Decision | None:
        frame: lorawan.DataFrame = pending.frame
        addr = f"{frame.dev_addr:08x}"
        sessions = self.core.state.lorawan.sessions_for(addr)
        if not sessions:
            self.drop("unknown_devaddr", addr, "uplink from unknown DevAddr %s dropped", addr)
            return self.foreign(pending, "unknown_devaddr", now)
        match = self._match(frame, sessions)
        if isinstance(match, str):
            return self.foreign(pending, match, now) if match == "bad_mic" else None
        session, keys, fcnt, status = match
        if not session["enabled"]:
            self.drop("device_disabled", session["dev_eui"], "uplink from disabled device %s dropped",
                      session["dev_eui"])
            return None
        nwk, app = keys
        payload = lorawan.decrypt_payload(frame, nwk, app, fcnt)
        duplicate = status == "retransmission"
        copies, radio = radio_fields(pending)
        data = {
            "dev_eui": session["dev_eui"], "device_id": session["device_id"], "app_eui": session["app_eui"],
            "dev_addr": addr, "fcnt": fcnt, "mtype": frame.mtype.label, "confirmed": frame.confirmed,
            "port": frame.f_port, "payload": payload.hex(), "phy": pending.phy.hex(), "adr": frame.adr,
            "ack": frame.ack, "duplicate": duplicate, **radio,
        }
        if frame.f_opts:
            data["f_opts"] = frame.f_opts.hex()
        if status == "reset":
            data["fcnt_reset"] = True
        if frame.adr_ack_req:
            data["adr_ack_req"] = True
        outcome = None
        if not duplicate:
            outcome = self._mac(session, frame, payload, data, copies, pending.dr, fcnt)
        extra, transmission = self.service.downlinks.plan(session, frame, keys, copies, pending.dr, duplicate, now,
                                                          outcome)
        data.update(extra)
        if session["settings"]["class"] == "C" and session["queue"]:
            self.service.class_c.wake(session["dev_eui"])
        self.core.metrics.counters[UPLINKS_AGAIN if duplicate else UPLINKS_NEW] += 1
        return Decision("lorawan.uplink", data, transmission)

    def _mac(self, session: dict[str, Any], frame: lorawan.DataFrame, payload: bytes, data: dict[str, Any],
             copies: list[Copy], dr: int, fcnt: int) -> mac.MacOutcome | None:
        """Read the uplink's MAC commands (FOpts or FPort 0) into the record and decide the MAC answers
        (None when no gateway that heard it can transmit: nothing could reach the device)."""
        raw = frame.f_opts or (payload if frame.f_port == 0 else b"")
        commands: tuple[mac_commands.MacCommand, ...] = ()
        if raw:
            parsed, error = mac_commands.decode(raw, uplink=True)
            commands = tuple(parsed)
            if parsed:
                data["mac_up"] = [c.as_dict() for c in parsed]
            if error:
                data["mac_error"] = error
        if not self.service.downlinks.reachable(copies):
            return None
        now = time.time()
        received = now
        if any(c.name == "DeviceTimeReq" for c in commands):
            received = _reception_time(copies[0], now)
        up = mac.Uplink(fcnt, dr, copies[0].rx.lsnr, len(copies), frame.adr, frame.adr_ack_req, commands, now,
                        received)
        return mac.handle(self.service.mac_context, session["mac"], session["settings"], up)

    def _match(self, frame: lorawan.DataFrame, sessions: list[dict[str, Any]]):
        """(session, keys, fcnt32, status) with status new | retransmission | reset, or a drop reason."""
        keys_of = self.service.keys.session_keys
        for session in sessions:
            if not session.get("nwk_s_key"):
                continue
            keys = keys_of(session)
            nwk = keys[0]
            expected = session["fcnt_up"]
            try:
                fcnt = lorawan.reconstruct_fcnt(frame.f_cnt16, expected)
            except ProtocolError:
                fcnt = None
            if fcnt is not None and lorawan.verify_data_mic(frame, nwk, fcnt):
                if fcnt == expected - 1:
                    return session, keys, fcnt, "retransmission"
                if fcnt - expected > lorawan.MAX_FCNT_GAP and not session["relax_fcnt"]:
                    self.drop("fcnt_gap", session["dev_eui"], "uplink from %s dropped: FCnt %d is %d ahead of "
                              "the expected %d", session["dev_eui"], fcnt, fcnt - expected, expected)
                    return "fcnt_gap"
                return session, keys, fcnt, "new"
            base = expected & ~0xFFFF
            for older in (base | frame.f_cnt16, base - 0x10000 + frame.f_cnt16):
                if 0 <= older < expected - 1 and lorawan.verify_data_mic(frame, nwk, older):
                    if session["relax_fcnt"]:
                        return session, keys, older, "reset"
                    self.drop("fcnt_replay", session["dev_eui"], "uplink from %s dropped: FCnt %d was already "
                              "used (expected %d or more)", session["dev_eui"], older, expected)
                    return "fcnt_replay"
        self.drop("bad_mic", frame.dev_addr_hex, "uplink for DevAddr %s dropped: MIC matches no session",
                  frame.dev_addr_hex)
        return "bad_mic"

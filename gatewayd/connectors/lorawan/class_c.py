"""Class C downlinks: a device that listens all the time gets its queued downlinks at once, on its
RX2 frequency and data rate, through the gateway that heard it last (`imme`: the gateway sends as
soon as it can).

One frame per device at a time: the next one waits `SPACING` seconds (the air time of the one
before and its TX_ACK), and a confirmed one waits for the device's ACK in an uplink (the class A
path repeats it there, up to `lorawan.confirm_attempts` times). The `lorawan.downlink` record
(the frame counter it used) is durable before the frame leaves.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from . import regions
from ...journal.writer import JournalUnavailable
from . import frames as lorawan, packets
from ...errors import ProtocolError
from .frames import MType
from ...secretbox import SecretBoxError

log = logging.getLogger("gatewayd.lorawan.class_c")

SPACING = 1.0  # seconds between two class C frames to one device
IDLE_CHECK = 30.0  # a pass now and then even unwoken (a gateway path may have come back)


class ClassC:
    def __init__(self, service):
        self.service = service
        self.core = service.core
        self.waiting: set[str] = set()  # DevEUIs of class C devices that may have something to send
        self._last_sent: dict[str, float] = {}
        self._wake = trio.Event()

    def wake(self, dev_eui: str | None = None) -> None:
        if dev_eui is not None:
            self.waiting.add(dev_eui)
        self._wake.set()

    async def run(self) -> None:
        for session in self.core.state.lorawan.devices.values():
            if session["settings"]["class"] == "C" and session["queue"]:
                self.waiting.add(session["dev_eui"])
        while True:
            next_due = await self.send_due()
            self._wake = trio.Event()
            timeout = IDLE_CHECK if next_due is None else max(0.0, next_due - trio.current_time())
            with trio.move_on_after(timeout):  # a class C device never waits longer than its spacing
                await self._wake.wait()

    async def send_due(self) -> float | None:
        """Send one frame to every class C device whose turn it is; the trio time of the next turn."""
        now = trio.current_time()
        next_due = None
        for dev_eui in sorted(self.waiting):
            session = self.core.state.lorawan.device(dev_eui)
            if not self._wants(session):
                self.waiting.discard(dev_eui)
                continue
            due = self._last_sent.get(dev_eui, -SPACING) + SPACING
            if due > now:
                next_due = due if next_due is None else min(next_due, due)
                continue
            if session["awaiting_ack"] is not None:
                continue  # a confirmed frame is out: its ACK (or the class A repeat) comes with an uplink
            if await self._send(session):
                self._last_sent[dev_eui] = trio.current_time()
                next_due = self._last_sent[dev_eui] + SPACING if next_due is None else next_due
        return next_due

    @staticmethod
    def _wants(session: dict[str, Any] | None) -> bool:
        return (session is not None and session["enabled"] and session["settings"]["class"] == "C"
                and bool(session["queue"]) and bool(session.get("nwk_s_key")) and bool(session.get("dev_addr")))

    def _path(self, session: dict[str, Any]):
        """(gateway EUI, downlink path) of a packet forwarder (Station gateways are served class A only)."""
        gateways = self.service.gateways
        last = session.get("last_gateway")
        for eui in ([last] if last else []) + sorted(gateways.paths):
            path = gateways.downlink_path(eui)
            if path is not None and path.link is None:
                return eui, path
        return None

    async def _send(self, session: dict[str, Any]) -> bool:
        route = self._path(session)
        if route is None:
            self.core.metrics.inc("gatewayd_lorawan_downlink_missed_total", reason="class_c_no_path")
            return False
        gateway, path = route
        downlinks = self.service.downlinks
        _, _, freq, dr = downlinks.rx_windows(session["mac"])
        head = session["queue"][0]
        payload = bytes.fromhex(head["payload"])
        limit = regions.max_payload(self.service.region, dr)
        if len(payload) > limit:
            await self._fail(session, head, f"payload of {len(payload)} bytes does not fit RX2 (DR{dr}, at most "
                                            f"{limit} bytes)")
            return False
        try:
            nwk, app = self.service.keys.session_keys(session)
            phy = lorawan.build_data_frame(
                MType.CONFIRMED_DATA_DOWN if head.get("confirm") else MType.UNCONFIRMED_DATA_DOWN,
                lorawan.parse_dev_addr(session["dev_addr"]), session["fcnt_down"], nwk, app, f_port=head["port"],
                payload=payload, f_pending=len(session["queue"]) > 1)
        except (ProtocolError, SecretBoxError) as exc:
            log.error("class C downlink to %s not built: %s", session["dev_eui"], exc)
            return False
        txpk = packets.TxPacket(imme=True, freq=freq, rfch=0, powe=self.service.tx_power, modu="LORA",
                             datr=regions.data_rate(self.service.region, dr).datr,
                             codr=self.service.region.coding_rate, ipol=True, data=phy)
        token = downlinks.new_token(path)
        track = downlinks.track_fields(session, head)
        data = {"dev_eui": session["dev_eui"], "device_id": session["device_id"], "downlink": {
            "fcnt": session["fcnt_down"], "confirmed": bool(head.get("confirm")), "ack": False,
            "f_pending": len(session["queue"]) > 1, "port": head["port"], "payload": head["payload"],
            "command_id": head["command_id"], "reference": head.get("reference", ""), "gateway": gateway,
            "window": "RX2", "class": "C", "freq": freq, "datr": txpk.datr, "token": token, "size": len(phy)}}
        if head.get("window"):
            data["downlink"]["asked_window"] = head["window"]
        try:
            await self.core.hub.publish_many([("lorawan.downlink", data)])
        except (JournalUnavailable, trio.TooSlowError) as exc:
            log.error("class C downlink to %s not recorded; not sent: %s", session["dev_eui"], exc)
            return False
        await downlinks.send([downlinks.make_transmission(gateway, path, txpk, token, track)])
        return True

    async def _fail(self, session: dict[str, Any], head: dict[str, Any], reason: str) -> None:
        data = {"dev_eui": session["dev_eui"], "device_id": session["device_id"],
                "failed": [{"command_id": head["command_id"], "reference": head.get("reference", ""),
                            "reason": reason}]}
        try:
            await self.core.hub.publish("lorawan.downlink_failed", data)
        except (JournalUnavailable, trio.TooSlowError) as exc:
            log.error("class C downlink failure of %s not recorded: %s", session["dev_eui"], exc)

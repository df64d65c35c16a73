"""LoRa Basics Station gateways: who may connect, one live link per gateway, messages into the
LoRaWAN network service and `dnmsg` downlinks out.

A Station gateway is an entry of the same gateway registry as packet forwarders. Its uplinks
become copies in the same dedup window as those heard over UDP (`Network.receive`), so a frame
heard by both kinds is one uplink with every gateway's EUI. A downlink planned for a copy heard
by a station goes back through that station's link as a `dnmsg`; its `dntxed` is the
`gateway.tx_ack` of a packet forwarder (Station reports no failures).

The link depends only on a connection with `send_nowait(text)`, `request_close(code, reason)`
and `ending` (see transports/wsconn.py), never on the web framework.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import trio

from ....errors import ProtocolError
from ....journal.writer import JournalUnavailable
from ....logs import RateLimitedLogger
from .. import packets, regions
from ..downlink import Transmission, Window
from ..gateways import DownlinkPath, _addr_text
from . import codec
from .router_config import PlanError, router_config

log = logging.getLogger("gatewayd.lorawan.station")

CLOSE_SUPERSEDED = 4002
CLOSE_REMOVED = 4001
MUXS_ID = 0  # this server's identity in discovery replies
_UPLINK_MESSAGES = {t: ("gatewayd_station_messages_total", (("msgtype", t),)) for t in ("jreq", "updf", "propdf")}


def _hz(mhz: float) -> int:
    return round(mhz * 1_000_000)


class StationLink:
    """The live connection of one Station gateway: a downlink path of the gateway registry."""

    kind = "station"

    def __init__(self, service: "StationService", eui: str, conn, remote: tuple):
        self.service = service
        self.eui = eui
        self.conn = conn
        self.remote = remote
        self.configured = False  # router_config sent

    @property
    def alive(self) -> bool:
        return not self.conn.ending

    def transmission(self, copy, window: Window, phy: bytes, track: dict[str, Any]) -> tuple[Transmission, dict]:
        """The `dnmsg` answering `copy` in `window` (RX1 windows also offer RX2 to the station)."""
        up: codec.Uplink = copy.context
        region = self.service.region
        diid = next(self.service.diids)
        if window.then is not None:  # RX1, with the device's RX2 for the station to fall back on
            rx_delay, rx1, rx2 = round(window.delay), (window.dr, _hz(window.freq)), (window.then.dr,
                                                                                        _hz(window.then.freq))
        else:
            rx_delay, rx1, rx2 = round(window.delay) - 1, None, (window.dr, _hz(window.freq))
        dev_eui = track.get("dev_eui") or ""
        text = codec.dnmsg(dev_eui=codec.eui_dashed(dev_eui) if dev_eui.strip("0") else codec.PLACEHOLDER_DEV_EUI,
                           diid=diid, pdu=phy, rx_delay=rx_delay, xtime=up.xtime, rctx=up.rctx, rx1=rx1, rx2=rx2,
                           priority=0, mux_time=time.time())
        where = {"gateway": copy.gateway, "window": window.name,
                 "tmst": (up.xtime + int(window.delay * 1_000_000)) & 0xFFFF_FFFF, "freq": window.freq,
                 "datr": regions.data_rate(region, window.dr).datr, "token": diid, "size": len(phy),
                 "via": "station"}
        return Transmission(copy.gateway, None, text, diid, track, link=self), where

    def send(self, tx: Transmission) -> None:
        if not self.conn.send_nowait(tx.datagram):
            self.service.core.metrics.inc("gatewayd_station_downlinks_dropped_total")


class StationService:
    AUTH_FAILED = "authentication failed"

    def __init__(self, core):
        self.core = core
        self.links: dict[str, StationLink] = {}
        self.diids = itertools.count(1)
        self._rlog = RateLimitedLogger(log, 60.0)
        m = core.metrics
        m.describe("gatewayd_station_messages_total", "Station messages received, by msgtype.")
        m.describe("gatewayd_station_malformed_total", "Station messages dropped as malformed, by reason.")
        m.describe("gatewayd_station_refused_total", "Station connections refused, by reason.")
        m.describe("gatewayd_station_downlinks_dropped_total", "dnmsg not queued: the station's send queue was full.")
        m.gauge("gatewayd_station_connections", "Station gateways connected now.", lambda: len(self.links))

    @property
    def lorawan(self):
        return self.core.service("lorawan")

    @property
    def region(self) -> regions.Region:
        return self.lorawan.region

    @property
    def max_frame(self) -> int:
        return self.core.settings.lorawan.station_max_frame_bytes

    # -- admission ----------------------------------------------------------------------------------------
    def check(self, eui: str, token: str | None) -> str | None:
        """Why this gateway may not connect (None: it may). Unknown gateways follow
        lorawan.accept_unknown_gateways; registered ones with a token must present it."""
        gateway = self.core.state.lorawan.gateway(eui)
        if gateway is None:
            return None if self.core.settings.lorawan.accept_unknown_gateways else "unknown gateway"
        if not self.lorawan.gateways.token_ok(gateway, token):
            return self.AUTH_FAILED
        return None

    def refuse(self, eui: str, remote: str, reason: str) -> None:
        self.core.metrics.inc("gatewayd_station_refused_total", reason=reason.replace(" ", "_"))
        self._rlog.warning(f"refused:{remote}", "Station gateway %s from %s refused: %s", eui, remote, reason)

    async def attach(self, eui: str, conn, remote: tuple) -> StationLink | None:
        """Admit the gateway (adding it on first contact when allowed) and make this connection its
        downlink path; an earlier connection of the same gateway is closed (4002)."""
        gateways = self.lorawan.gateways
        if not await gateways.admit(eui, remote, 0, announce=False):
            return None
        link = StationLink(self, eui, conn, remote)
        old = self.links.get(eui)
        if old is not None:
            old.conn.request_close(CLOSE_SUPERSEDED, "superseded by a newer connection")
        self.links[eui] = link
        gateways.paths[eui] = DownlinkPath(remote, 0, trio.current_time(), link)
        await self._alive(eui, {"kind": "connect", "addr": _addr_text(remote)})
        log.info("Station gateway %s connected from %s", eui, _addr_text(remote))
        return link

    async def keepalive(self, link: StationLink) -> None:
        """While the station stays connected: a `gateway.alive` every keep-alive period, as a packet
        forwarder's PULL_DATA gives (last seen, comm_gwalive, silence alerts)."""
        while True:
            await trio.sleep(self.core.settings.lorawan.keepalive_interval)
            if not link.alive or self.links.get(link.eui) is not link:
                return
            self.lorawan.gateways.heard[link.eui] = trio.current_time()
            await self._alive(link.eui, {"kind": "keepalive", "addr": _addr_text(link.remote)})

    async def detach(self, link: StationLink) -> None:
        if self.links.get(link.eui) is not link:
            return  # replaced by a newer connection
        del self.links[link.eui]
        gateways = self.lorawan.gateways
        path = gateways.paths.get(link.eui)
        if path is not None and path.link is link:
            del gateways.paths[link.eui]
        gateway = self.core.state.lorawan.gateway(link.eui)
        if gateway is not None and gateway["online"]:
            await self._publish("gateway.offline", {"eui": link.eui, "last_seen": gateway["last_seen"],
                                                    "reason": "connection closed", "via": "station"})

    async def _alive(self, eui: str, fields: dict[str, Any]) -> None:
        gateway = self.core.state.lorawan.gateway(eui)
        came_online = gateway is not None and not gateway["online"]
        await self._publish("gateway.alive", {"eui": eui, **fields, "via": "station", "came_online": came_online})

    async def _publish(self, type_: str, data: dict[str, Any]) -> None:
        try:
            await self.core.hub.publish(type_, data, durable=False)
        except (JournalUnavailable, trio.TooSlowError) as exc:
            self._rlog.error("journal", "Station gateway record not written: %s", exc)

    # -- messages -------------------------------------------------------------------------------------------
    async def handle(self, link: StationLink, frame: str | bytes) -> None:
        """One frame of a connected station; malformed ones are counted and dropped."""
        metrics = self.core.metrics
        if link.eui not in self.core.state.lorawan.gateways:  # an operator removed it meanwhile
            link.conn.request_close(CLOSE_REMOVED, "gateway removed")
            return
        try:
            msg = codec.parse_message(frame, self.max_frame)
        except codec.StationError as exc:
            self._malformed(link, exc.code, exc.message)
            return
        if isinstance(msg, codec.Uplink):
            metrics.counters[_UPLINK_MESSAGES[msg.msgtype]] += 1  # the hot path skips inc()'s label sorting
            self.uplink(link, msg)
        elif isinstance(msg, codec.DnTxed):
            metrics.inc("gatewayd_station_messages_total", msgtype="dntxed")
            await self.lorawan.downlinks.delivered(link.eui, msg.diid)
        elif isinstance(msg, codec.TimeSync):
            metrics.inc("gatewayd_station_messages_total", msgtype="timesync")
            link.conn.send_nowait(codec.timesync_reply(msg.txtime, time.time()))
        elif isinstance(msg, codec.Version):
            metrics.inc("gatewayd_station_messages_total", msgtype="version")
            await self.version(link, msg)
        else:
            metrics.inc("gatewayd_station_messages_total", msgtype="unknown")
            self._rlog.info(f"unknown:{link.eui}", "Station gateway %s sent msgtype %r (ignored)", link.eui,
                            msg.msgtype)

    def _malformed(self, link: StationLink, reason: str, message: str) -> None:
        self.core.metrics.inc("gatewayd_station_malformed_total", reason=reason)
        self._rlog.warning(f"{reason}:{link.eui}", "Station gateway %s: message dropped: %s", link.eui, message[:200])

    async def version(self, link: StationLink, msg: codec.Version) -> None:
        lorawan = self.lorawan
        try:
            config = router_config(self.region, sub_band=lorawan.sub_band, max_eirp=lorawan.tx_power,
                                   mux_time=time.time())
        except PlanError as exc:
            log.error("Station gateway %s cannot be configured: %s", link.eui, exc)
            link.conn.request_close(1011, "no channel plan for this region")  # reconnects find it fixed
            return
        link.conn.send_nowait(codec.orjson.dumps(config).decode())
        link.configured = True
        info = {"station": msg.station, "firmware": msg.firmware, "package": msg.package, "model": msg.model,
                "protocol": msg.protocol}
        await self._alive(link.eui, {"kind": "version", "addr": _addr_text(link.remote), "station": info})

    def uplink(self, link: StationLink, up: codec.Uplink) -> None:
        try:
            rate = regions.data_rate(self.region, up.dr)
        except ProtocolError as exc:
            self._malformed(link, "bad_dr", exc.message)
            return
        if not rate.uplink:
            self._malformed(link, "bad_dr", f"DR{up.dr} is not an uplink data rate of {self.region.name}")
            return
        rx = packets.RxPacket(tmst=up.xtime & 0xFFFF_FFFF, freq=up.freq / 1_000_000, modu=rate.modulation,
                           datr=rate.datr, data=up.phy,
                           rssi=int(up.rssi) if up.rssi.is_integer() else up.rssi, lsnr=up.snr)
        now = trio.current_time()
        self.lorawan.gateways.heard[link.eui] = now
        self.lorawan.network.receive(link.eui, rx, now, up)

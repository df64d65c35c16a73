"""A LoRa Basics Station gateway for tests: discovery, the data connection, uplinks, `dntxed`.

It turns a PHYPayload into the station's `jreq` / `updf` / `propdf` message the way the station
does (its own code, independent of the server's codec), over a real trio-websocket client.
"""

from __future__ import annotations

import json
import struct
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

STATION_GW = "b827ebfffe612a0d"


def id6(eui: str) -> str:
    return ":".join(eui[i:i + 4] for i in range(0, 16, 4))


def dashed(le_bytes: bytes) -> str:
    return "-".join(f"{b:02X}" for b in le_bytes[::-1])


def uplink_message(phy: bytes, *, dr: int = 5, freq: int = 868_100_000, xtime: int = 0x2A00_0000_1000_0000,
                   rctx: int = 0, rssi: float = -60.0, snr: float = 8.5) -> dict[str, Any]:
    """The message a station sends for a received PHYPayload."""
    mhdr = phy[0]
    up = {"DR": dr, "Freq": freq, "upinfo": {"rctx": rctx, "xtime": xtime, "gpstime": 0, "fts": -1,
                                                 "rssi": rssi, "snr": snr, "rxtime": 1_700_000_000.5},
          "RefTime": 0.0}
    mtype = mhdr >> 5
    if mtype == 0:
        return {"msgtype": "jreq", "MHdr": mhdr, "JoinEui": dashed(phy[1:9]), "DevEui": dashed(phy[9:17]),
                "DevNonce": int.from_bytes(phy[17:19], "little"),
                "MIC": struct.unpack("<i", phy[19:23])[0], **up}
    if mtype in (2, 4):
        f_ctrl = phy[5]
        opts_end = 8 + (f_ctrl & 0x0F)
        port = phy[opts_end] if opts_end < len(phy) - 4 else -1
        return {"msgtype": "updf", "MHdr": mhdr, "DevAddr": struct.unpack("<i", phy[1:5])[0], "FCtrl": f_ctrl,
                "FCnt": int.from_bytes(phy[6:8], "little"), "FOpts": phy[8:opts_end].hex(), "FPort": port,
                "FRMPayload": phy[opts_end + 1:-4].hex() if port >= 0 else "",
                "MIC": struct.unpack("<i", phy[-4:])[0], **up}
    return {"msgtype": "propdf", "FRMPayload": phy.hex(), **up}


class SimStation:
    """One station connected to a daemon (`connect()`), keeping every message it read."""

    def __init__(self, daemon, eui: str = STATION_GW, token: str | None = None):
        self.daemon = daemon
        self.eui = eui
        self.token = token
        self.ws = None
        self.received: list[dict[str, Any]] = []
        self.xtime = 0x2A00_0000_1000_0000

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"Authorization", f"Bearer {self.token}".encode())] if self.token else []

    async def discover(self, router: Any = None) -> dict[str, Any]:
        async with open_websocket_url(f"{self.daemon.ws_url}/router-info", extra_headers=self.headers) as ws:
            await ws.send_message(json.dumps({"router": id6(self.eui) if router is None else router}))
            with trio.fail_after(5):
                return json.loads(await ws.get_message())

    @asynccontextmanager
    async def connect(self, uri: str | None = None, version: bool = True):
        uri = uri or f"{self.daemon.ws_url}/router/{self.eui}"
        async with open_websocket_url(uri, extra_headers=self.headers) as ws:
            self.ws = ws
            if version:
                await self.send({"msgtype": "version", "station": "2.0.6(rpi/std)", "firmware": None,
                                 "package": None, "model": "rpi", "protocol": 2, "features": "rmtsh"})
                self.router_config = await self.expect("router_config")
            yield self

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send_message(message if isinstance(message, str) else json.dumps(message))

    async def uplink(self, phy: bytes, **radio) -> dict[str, Any]:
        """Send the frame; returns the message (its xtime advances by a second per uplink)."""
        self.xtime += 1_000_000
        message = uplink_message(phy, xtime=self.xtime, **radio)
        await self.send(message)
        return message

    async def expect(self, msgtype: str, timeout: float = 5.0) -> dict[str, Any]:
        for i, message in enumerate(self.received):
            if message.get("msgtype") == msgtype:
                return self.received.pop(i)
        with trio.fail_after(timeout):
            while True:
                message = json.loads(await self.ws.get_message())
                if message.get("msgtype") == msgtype:
                    return message
                self.received.append(message)

    async def dntxed(self, dnmsg: dict[str, Any]) -> None:
        await self.send({"msgtype": "dntxed", "diid": dnmsg["diid"], "DevEui": dnmsg["DevEui"], "rctx": 0,
                         "xtime": dnmsg["xtime"] + dnmsg["RxDelay"] * 1_000_000, "txtime": 0.0, "gpstime": 0,
                         "DR": dnmsg["RX1DR"], "Freq": dnmsg["RX1Freq"]})

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Wait for the server to close; the close code."""
        with trio.fail_after(timeout):
            try:
                while True:
                    self.received.append(json.loads(await self.ws.get_message()))
            except ConnectionClosed as exc:
                return exc.reason.code

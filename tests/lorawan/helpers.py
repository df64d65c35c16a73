"""LoRaWAN test kit: a packet forwarder over real UDP, a monitoring client, device provisioning."""

from __future__ import annotations

import json
import socket
from contextlib import asynccontextmanager
from typing import Any, Callable

import trio
from trio_websocket import open_websocket_url

from gatewayd import ops
from gatewayd.connectors.lorawan import gwmp, packets
from tests.lorasim import SimDevice, SimGateway

# ABP device (keys as printed; any 16 bytes do)
ABP_EUI = "0004a30b001c0530"
ABP_ADDR = "26011bda"
ABP_NWK = "2b7e151628aed2a6abf7158809cf4f3c"
ABP_APP = "3c4fcf098815f7aba6d2ae2816157e2b"

# OTAA device
OTAA_EUI = "70b3d57ed0000001"
OTAA_APP_EUI = "70b3d57ed0000000"
OTAA_KEY = "000102030405060708090a0b0c0d0e0f"

GW1, GW2, GW3 = "aa555a0000000001", "aa555a0000000002", "aa555a0000000003"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def add_abp(core, *, dev_eui: str = ABP_EUI, dev_addr: str = ABP_ADDR, nwk: str = ABP_NWK,
                  app: str = ABP_APP, relax: bool = False, name: str = "abp-sensor") -> dict:
    return await ops.call(core, "device.create", {"name": name, "lorawan": {
        "dev_eui": dev_eui, "dev_addr": dev_addr, "nwk_s_key": nwk, "app_s_key": app, "relax_fcnt": relax}})


async def add_otaa(core, *, dev_eui: str = OTAA_EUI, app_eui: str = OTAA_APP_EUI, app_key: str = OTAA_KEY,
                   name: str = "otaa-sensor") -> dict:
    return await ops.call(core, "device.create", {"name": name, "lorawan": {
        "dev_eui": dev_eui, "app_eui": app_eui, "app_key": app_key}})


def abp_device(fcnt: int = 0) -> SimDevice:
    return SimDevice.abp(ABP_ADDR, ABP_NWK, ABP_APP, fcnt)


def otaa_device() -> SimDevice:
    return SimDevice.otaa(OTAA_EUI, OTAA_APP_EUI, OTAA_KEY)


class UdpGateway:
    """A packet forwarder on 127.0.0.1: PUSH_DATA on one socket, PULL_DATA/PULL_RESP on another."""

    def __init__(self, port: int, eui: str = GW1, version: int = 2):
        self.sim = SimGateway(eui, version=version)
        self.port = port
        self.up = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.down = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.pull_resps: list[gwmp.PullResp] = []

    @property
    def eui(self) -> str:
        return self.sim.eui

    async def __aenter__(self) -> "UdpGateway":
        await self.up.connect(("127.0.0.1", self.port))
        await self.down.connect(("127.0.0.1", self.port))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.up.close()
        self.down.close()

    async def _reply(self, sock, wanted: type, timeout: float):
        with trio.fail_after(timeout):
            while True:
                reply = gwmp.parse_server_datagram(await sock.recv(65535))
                if isinstance(reply, wanted):
                    return reply
                if isinstance(reply, gwmp.PullResp):
                    self.pull_resps.append(reply)

    async def pull(self, timeout: float = 3.0) -> gwmp.PullAck:
        await self.down.send(self.sim.pull_data())
        ack = await self._reply(self.down, gwmp.PullAck, timeout)
        assert ack.token == self.sim.last_token
        return ack

    async def push(self, *phys: bytes, timeout: float = 3.0, **radio) -> int:
        """Send one PUSH_DATA (one rxpk per frame); returns the tmst it carried."""
        tmst = self.sim.tmst if "tmst" not in radio else radio["tmst"]
        await self.up.send(self.sim.push_data(*phys, **radio))
        ack = await self._reply(self.up, gwmp.PushAck, timeout)
        assert ack.token == self.sim.last_token
        return tmst

    async def push_packets(self, *rxpk: packets.RxPacket, timeout: float = 3.0) -> None:
        """PUSH_DATA with ready-made rxpk entries (e.g. a CRC error: `self.sim.rx_packet(phy, stat=-1)`)."""
        await self.up.send(gwmp.push_data(self.sim.version, self.sim._token(), self.eui, list(rxpk)))
        await self._reply(self.up, gwmp.PushAck, timeout)

    async def stat(self, timeout: float = 3.0, **fields) -> None:
        await self.up.send(self.sim.stat(**fields))
        await self._reply(self.up, gwmp.PushAck, timeout)

    async def send_raw(self, data: bytes) -> None:
        await self.up.send(data)

    async def pull_resp(self, timeout: float = 4.0) -> gwmp.PullResp:
        if self.pull_resps:
            return self.pull_resps.pop(0)
        return await self._reply(self.down, gwmp.PullResp, timeout)

    async def no_pull_resp(self, within: float) -> None:
        """Assert that no PULL_RESP arrives within `within` seconds."""
        assert not self.pull_resps
        with trio.move_on_after(within):
            reply = await self._reply(self.down, gwmp.PullResp, within + 1)
            raise AssertionError(f"unexpected PULL_RESP: {reply}")

    async def tx_ack(self, token: int, error: str | None = "NONE") -> None:
        await self.down.send(self.sim.tx_ack(token, error))


class Monitor:
    """A /monitor/communications client that keeps every frame it read."""

    def __init__(self, ws):
        self.ws = ws
        self.frames: list[dict] = []

    async def expect(self, predicate: Callable[[dict], bool], timeout: float = 5.0, start: int = 0) -> dict:
        """The first frame (from index `start` of those read so far, then new ones) that matches."""
        for frame in self.frames[start:]:
            if predicate(frame):
                return frame
        with trio.fail_after(timeout):
            while True:
                frame = json.loads(await self.ws.get_message())
                self.frames.append(frame)
                if predicate(frame):
                    return frame

    async def comm(self, comm_type: str, timeout: float = 5.0, **fields) -> dict:
        def match(frame: dict) -> bool:
            return frame.get("CommType") == comm_type and all(frame.get(k) == v for k, v in fields.items())
        return await self.expect(match, timeout)

    def all(self, comm_type: str) -> list[dict]:
        return [f for f in self.frames if f.get("CommType") == comm_type]

    async def tx(self, request: dict, timeout: float = 5.0) -> dict:
        start = len(self.frames)
        await self.ws.send_message(json.dumps(request))
        return await self.expect(lambda f: "Result" in f and f.get("Reference") == request.get("Reference"),
                                 timeout, start)


@asynccontextmanager
async def open_monitor(daemon, query: str = "connector=lorawan"):
    url = f"{daemon.ws_url}/monitor/communications?{query}"
    headers = [(b"Authorization", f"Bearer {daemon.api_key}".encode())]
    async with open_websocket_url(url, extra_headers=headers) as ws:
        yield Monitor(ws)


def dropped(core, reason: str) -> float:
    return core.metrics.counters.get(("gatewayd_lorawan_dropped_total", (("reason", reason),)), 0)


def records_of(core, type_: str) -> list:
    """Every record of a type in the journal files (durable or written at close)."""
    from gatewayd.journal.reader import JournalReader

    return [r for r in JournalReader(core.journal_dir).records() if r.type == type_]


def journal_bytes(core) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(core.journal_dir.iterdir()) if p.is_file())

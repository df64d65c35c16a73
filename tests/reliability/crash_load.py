"""Mixed load for the crash-consistency campaign, and the ledger of what clients saw acknowledged.

Every client survives the daemon's death: it waits for the next incarnation (`Endpoint`) and goes
on. What a client was told is recorded with the incarnation it was told in, so the checks after a
kill can say exactly what the journal must hold.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from gatewayd.connectors.lorawan import gwmp, frames as lorawan
from gatewayd.errors import ProtocolError
from tests.conftest import ROOT
from tests.lorasim import SimDevice, SimGateway

# Everything a client may meet while the daemon dies under it.
GONE = (ConnectionClosed, HandshakeError, OSError, trio.TooSlowError, httpx.HTTPError, trio.BrokenResourceError,
        trio.ClosedResourceError, json.JSONDecodeError, KeyError)


class Spawner:
    """gatewayd as a subprocess whose output goes to a file (a pipe nobody reads would fill up)."""

    def __init__(self, state_dir: Path, args: list[str], logs: Path):
        self.state_dir = state_dir
        self.args = args
        self.logs = logs
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.log_path: Path | None = None

    def spawn(self) -> None:
        runfile = self.state_dir / "run.json"
        runfile.unlink(missing_ok=True)
        self.runs += 1
        self.log_path = self.logs / f"run-{self.runs:03d}.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gatewayd", "serve", "--state-dir", str(self.state_dir), "--host", "127.0.0.1",
                 "--port", "0", *self.args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> dict:
        runfile = self.state_dir / "run.json"
        deadline = time.monotonic() + timeout
        while not runfile.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gatewayd exited ({self.proc.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"gatewayd did not start:\n{self.output()}")
            time.sleep(0.01)
        return json.loads(runfile.read_text())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def terminate(self, timeout: float = 10) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


class Endpoint:
    """Where the daemon currently listens; clients wait here while it is down."""

    def __init__(self) -> None:
        self.port: int | None = None
        self.udp_port: int | None = None
        self.generation = 0
        self._up = trio.Event()
        self.stopping = False

    def up(self, port: int, udp_port: int | None) -> None:
        self.port, self.udp_port = port, udp_port
        self.generation += 1
        self._up.set()

    def down(self) -> None:
        if self._up.is_set():
            self._up = trio.Event()

    async def wait_up(self) -> int:
        await self._up.wait()
        return self.port

    @property
    def is_up(self) -> bool:
        return self._up.is_set()


@dataclass
class Ledger:
    ws_acked: set[str] = field(default_factory=set)                      # telemetry ids acked
    punches_acked: set[tuple] = field(default_factory=set)              # (sn, enrollid, time, inout, event)
    tx_ok: dict[str, str] = field(default_factory=dict)                  # TX Reference -> device id
    tx_by_data: dict[str, str] = field(default_factory=dict)             # payload hex -> TX Reference
    command_ref: dict[str, str] = field(default_factory=dict)            # cmd id -> TX Reference
    tx_delivered: set[str] = field(default_factory=set)                  # References acknowledged by devices
    deliveries: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # cmd id -> generations
    delivered_as: dict[str, tuple] = field(default_factory=dict)         # cmd id -> (command, payload) first seen
    changed_repeats: list[str] = field(default_factory=list)            # cmd ids delivered again with other content
    results_sent: dict[str, str] = field(default_factory=dict)           # cmd id -> device id
    confirmed: dict[str, int] = field(default_factory=dict)              # cmd id -> generation seen acknowledged
    durable_ack: dict[str, int] = field(default_factory=dict)            # cmd id -> generation it was durable by
    rx_seen: dict[str, int] = field(default_factory=dict)                # DevEUI -> highest comm_rx seqno fanned out
    downlink_fcnts: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))  # DevAddr -> FCnts
    joins_accepted: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # DevEUI -> DevNonces
    joins_transmitted: dict[str, set[tuple]] = field(default_factory=lambda: defaultdict(set))  # (AppNonce, DevAddr)
    monitor_seq: int = 0
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def total_acked(self) -> int:
        return len(self.ws_acked) + len(self.punches_acked) + len(self.tx_ok)


async def _pause(rng: random.Random, low: float = 0.002, high: float = 0.02) -> None:
    await trio.sleep(rng.uniform(low, high))  # pacing of a simulated device, not a wait for a condition


# -- WebSocket devices: telemetry with ids, commands answered ----------------------------------------------
async def ws_device(ep: Endpoint, ledger: Ledger, device: dict, rng: random.Random) -> None:
    while True:
        port = await ep.wait_up()
        generation = ep.generation
        try:
            async with open_websocket_url(f"ws://127.0.0.1:{port}/ws", connect_timeout=3,
                                          disconnect_timeout=1) as ws:
                await ws.send_message(json.dumps({"type": "register", "device_id": device["id"],
                                                  "token": device["token"]}))
                with trio.fail_after(5):
                    reply = json.loads(await ws.get_message())
                if reply.get("type") != "registered":
                    await trio.sleep(0.1)
                    continue
                sent: set[str] = set()

                async def reader() -> None:
                    while True:
                        msg = json.loads(await ws.get_message())
                        if msg.get("type") == "ack" and msg.get("id") in sent:
                            ledger.ws_acked.add(msg["id"])
                        elif msg.get("type") == "command":
                            reference = ledger.tx_by_data.get((msg.get("payload") or {}).get("data"))
                            if reference is not None:
                                ledger.command_ref[msg["id"]] = reference
                            ledger.deliveries[msg["id"]].append(ep.generation)
                            content = (msg.get("command"), msg.get("payload"))
                            if ledger.delivered_as.setdefault(msg["id"], content) != content:
                                ledger.changed_repeats.append(msg["id"])
                            ledger.results_sent[msg["id"]] = device["id"]
                            await ws.send_message(json.dumps({"type": "command_result", "id": msg["id"], "ok": True}))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(reader)
                    while ep.generation == generation and ep.is_up:
                        ledger.counts[f"telemetry of {device['name']}"] += 1
                        counter = ledger.counts[f"telemetry of {device['name']}"]
                        msg_id = f"{device['name']}:{counter}"
                        sent.add(msg_id)
                        await ws.send_message(json.dumps({"type": "telemetry", "id": msg_id,
                                                          "payload": {"n": counter, "pad": "x" * rng.randrange(200)}}))
                        ledger.counts["ws telemetry sent"] += 1
                        await _pause(rng)
                    nursery.cancel_scope.cancel()
        except* GONE:
            pass
        await trio.sleep(0.02)


# -- attendance terminals, HTTP and WebSocket mode: resend a batch until it is acknowledged ----------------------
def _batch(sn: str, index: int, size: int = 3) -> list[dict]:
    start = datetime(2026, 1, 1) + timedelta(minutes=index * size)
    return [{"enrollid": 1 + i, "time": (start + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S"),
             "mode": 1, "inout": i % 2, "event": 0} for i in range(size)]


def _keys(sn: str, records: list[dict]) -> set[tuple]:
    return {(sn, r["enrollid"], r["time"], r["inout"], r["event"]) for r in records}


async def http_terminal(ep: Endpoint, ledger: Ledger, sn: str, rng: random.Random) -> None:
    index = 0
    while True:
        port = await ep.wait_up()
        records = _batch(sn, index)
        body = {"cmd": "sendlog", "sn": sn, "count": len(records), "logindex": index, "record": records}
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                reply = await client.post("/api/device-http", content=json.dumps(body))
                if reply.status_code == 200 and reply.json().get("result") is True:
                    ledger.punches_acked |= _keys(sn, records)
                    index += 1
        except* GONE:
            pass
        await _pause(rng, 0.005, 0.03)


async def ws_terminal(ep: Endpoint, ledger: Ledger, sn: str, rng: random.Random) -> None:
    index = 0
    while True:
        port = await ep.wait_up()
        generation = ep.generation
        try:
            async with open_websocket_url(f"ws://127.0.0.1:{port}/", connect_timeout=3, disconnect_timeout=1) as ws:
                await ws.send_message(json.dumps({"cmd": "reg", "sn": sn, "cpusn": "c", "devinfo": {"modelname": "m"}}))
                while ep.generation == generation:
                    records = _batch(sn, index)
                    await ws.send_message(json.dumps({"cmd": "sendlog", "sn": sn, "count": len(records),
                                                      "logindex": index, "record": records}))
                    with trio.fail_after(5):
                        while True:
                            msg = json.loads(await ws.get_message())
                            if msg.get("ret") == "sendlog":
                                break
                            if "cmd" in msg and "ret" not in msg:  # a command (getnewlog ...): empty answer
                                await ws.send_message(json.dumps({"ret": msg["cmd"], "result": True, "count": 0,
                                                                  "record": []}))
                    if msg.get("result") is True:
                        ledger.punches_acked |= _keys(sn, records)
                        index += 1
                    await _pause(rng, 0.005, 0.03)
        except* GONE:
            pass
        await trio.sleep(0.02)


# -- operators: TX requests (durable commands), and watching the commands get acknowledged -------------------
async def tx_sender(ep: Endpoint, ledger: Ledger, api_key: str, devices: list[dict], rng: random.Random) -> None:
    n = 0
    while True:
        port = await ep.wait_up()
        n += 1
        device = rng.choice(devices)
        reference = f"ref-{n}"
        data = os.urandom(6).hex()
        ledger.tx_by_data[data] = reference
        body = {"function": "TX", "DevEui": device["id"], "Payload": data, "Port": 1, "Reference": reference}
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5,
                                         headers={"Authorization": f"Bearer {api_key}"}) as client:
                reply = await client.post("/api/tx", content=json.dumps(body))
                if reply.status_code == 200 and reply.json().get("Result") == "Success":
                    ledger.tx_ok[reference] = device["id"]
        except* GONE:
            pass
        await _pause(rng, 0.02, 0.08)


async def command_checker(ep: Endpoint, ledger: Ledger, api_key: str) -> None:
    """Marks commands the daemon reports acknowledged (after the device answered them)."""
    while True:
        port = await ep.wait_up()
        generation = ep.generation
        waiting = [c for c in ledger.results_sent if c not in ledger.confirmed]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5,
                                         headers={"Authorization": f"Bearer {api_key}"}) as client:
                for command_id in waiting[:50]:
                    device_id = ledger.results_sent[command_id]
                    reply = await client.get(f"/api/devices/{device_id}/commands/{command_id}")
                    if reply.status_code == 200 and reply.json().get("state") == "acknowledged":
                        ledger.confirmed[command_id] = generation
                        if command_id in ledger.command_ref:
                            ledger.tx_delivered.add(ledger.command_ref[command_id])
        except* GONE:
            pass
        await trio.sleep(0.1)


# -- LoRaWAN: a packet forwarder with an ABP device (uplinks, some confirmed) and OTAA joins -------------------
async def lora_gateway(ep: Endpoint, ledger: Ledger, abp: SimDevice, otaa_eui: str, otaa_app_eui: str,
                       otaa_key: str, rng: random.Random) -> None:
    gateway = SimGateway("aa555a0000000001")
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    nonce = rng.randrange(1, 60000)
    async with trio.open_nursery() as nursery:
        async def listen() -> None:
            while True:
                data = await sock.recv(65536)
                try:
                    reply = SimGateway.parse_reply(data)
                except ProtocolError:
                    continue
                if isinstance(reply, gwmp.PullResp):
                    _note_downlink(ledger, reply.txpk.data, otaa_key, otaa_eui, nonce)
                    await sock.sendto(gateway.tx_ack(reply.token), ("127.0.0.1", ep.udp_port))

        nursery.start_soon(listen)
        last_pull = 0.0
        while True:
            await ep.wait_up()
            address = ("127.0.0.1", ep.udp_port)
            try:
                if time.monotonic() - last_pull > 0.5:
                    await sock.sendto(gateway.pull_data(), address)
                    last_pull = time.monotonic()
                if rng.random() < 0.1:
                    nonce = (nonce + 1) % 65536
                    join = SimDevice.otaa(otaa_eui, otaa_app_eui, otaa_key)
                    await sock.sendto(gateway.push_data(join.join_request(nonce)), address)
                    ledger.counts["join requests"] += 1
                else:
                    await sock.sendto(gateway.push_data(abp.uplink(2, os.urandom(4), confirmed=rng.random() < 0.3)),
                                      address)
                    ledger.counts["uplinks sent"] += 1
            except OSError:
                pass
            await _pause(rng, 0.01, 0.03)


def _note_downlink(ledger: Ledger, phy: bytes, otaa_key: str, otaa_eui: str, nonce: int) -> None:
    try:
        frame = lorawan.parse_phy(phy)
    except ProtocolError:
        try:  # a join-accept: its MIC proves it is ours; AppNonce and DevAddr name its join record
            accept = lorawan.decode_join_accept(lorawan.parse_key(otaa_key), phy)
            ledger.joins_transmitted[otaa_eui].add((accept["app_nonce"], lorawan.dev_addr_hex(accept["dev_addr"])))
            ledger.counts["join accepts received"] += 1
        except ProtocolError:
            pass
        return
    if isinstance(frame, lorawan.DataFrame) and not frame.uplink:
        ledger.downlink_fcnts[frame.dev_addr].append(frame.f_cnt16)


# -- monitoring: comm_rx seqno fanned out (only durable records are) --------------------------------------------
async def monitor_reader(ep: Endpoint, ledger: Ledger, api_key: str) -> None:
    while True:
        port = await ep.wait_up()
        query = f"since={ledger.monitor_seq + 1}&connector=lorawan" if ledger.monitor_seq else "connector=lorawan"
        try:
            async with open_websocket_url(f"ws://127.0.0.1:{port}/monitor/communications?{query}",
                                          extra_headers=[(b"Authorization", f"Bearer {api_key}".encode())],
                                          connect_timeout=3, disconnect_timeout=1) as ws:
                while True:
                    frame = json.loads(await ws.get_message())
                    ledger.monitor_seq = max(ledger.monitor_seq, frame.get("Seq", 0))
                    if frame.get("CommType") == "comm_rx":
                        seqno = int(frame["Extra"].get("seqno", "-1"))
                        dev = frame["DevEui"].lower()
                        ledger.rx_seen[dev] = max(ledger.rx_seen.get(dev, -1), seqno)
                    elif frame.get("CommType") == "comm_join" and frame["Extra"].get("accepted") == "true":
                        ledger.joins_accepted[frame["DevEui"].lower()].add(int(frame["Extra"]["devnonce"]))
        except* GONE:
            pass
        await trio.sleep(0.05)

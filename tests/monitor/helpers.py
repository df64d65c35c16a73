"""Monitoring clients for the tests, and fake mappers / TX handlers for testing the plumbing."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from gatewayd.comm_tables import Comms, CommTables
from gatewayd.connector import Connector
from gatewayd.journal.record import Record, parse_ts
from gatewayd.connectors.monitor.resiot import Communication

FAKE_RECORD = "test.comm"
BROKEN_RECORD = "test.broken"


def monitor_url(daemon, stream: str = "communications", **query: Any) -> str:
    url = f"{daemon.ws_url}/monitor/{stream}"
    return url + ("?" + urlencode(query) if query else "")


@asynccontextmanager
async def open_monitor(daemon, stream: str = "communications", *, key: str | None = None, **query: Any):
    headers = [(b"Authorization", f"Bearer {key or daemon.api_key}".encode())]
    async with open_websocket_url(monitor_url(daemon, stream, **query), extra_headers=headers) as ws:
        yield ws


async def next_frame(ws, timeout: float = 5.0) -> dict:
    with trio.fail_after(timeout):
        return json.loads(await ws.get_message())


async def send_frame(ws, obj: Any) -> None:
    await ws.send_message(obj if isinstance(obj, str) else json.dumps(obj))


async def frames_until(ws, predicate, timeout: float = 5.0) -> list[dict]:
    """Frames up to and including the first one for which predicate(frame) is true."""
    out = []
    with trio.fail_after(timeout):
        while True:
            frame = json.loads(await ws.get_message())
            out.append(frame)
            if predicate(frame):
                return out


async def close_of(ws, timeout: float = 5.0):
    """Read until the server closes; return (code, reason, frames read on the way)."""
    frames = []
    with trio.fail_after(timeout):
        try:
            while True:
                frames.append(json.loads(await ws.get_message()))
        except ConnectionClosed as exc:
            return exc.reason.code, exc.reason.reason, frames


def fake_comm(record: Record):
    """test.comm records carry their Communication's fields."""
    data = record.data
    yield Communication(
        comm_type=data.get("comm_type", "comm_rx"), connector=data.get("connector", "fake"),
        dev_eui=data.get("dev", "dev-1"), dt=parse_ts(record.ts), seq=record.seq,
        app_eui=data.get("app_eui", ""), port=data.get("port"),
        gateway_euis=tuple(data.get("gateways", ())), payload=bytes.fromhex(data.get("payload", "")),
        extra=data.get("extra", {}), command=data.get("command"), reference=data.get("reference"),
        confirmation=data.get("confirmation"), error=data.get("error"))


class FakeTx:
    """A connector that owns a fixed set of devices and remembers what it was asked to send."""

    def __init__(self, connector: str, devices: set[str], refuse: Exception | None = None):
        self.connector = connector
        self.devices = devices
        self.refuse = refuse
        self.sent: list[tuple[str, Any]] = []

    def owns(self, core, dev_key: str) -> bool:
        return dev_key in self.devices

    async def submit(self, core, dev_key: str, tx) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.sent.append((dev_key, tx))


def broken_comm(record: Record):
    """test.broken records with `boom` fail to map."""
    if record.data.get("boom"):
        raise KeyError("boom")
    yield from ()


# A connector of test records only: the monitor tests' daemon runs with it (tests/monitor/conftest.py).
TEST_CONNECTOR = Connector("test", comms=(Comms(communications={FAKE_RECORD: fake_comm, BROKEN_RECORD: broken_comm}),))


def with_tx_handlers(tables: CommTables, handlers) -> CommTables:
    """The same mappers with only these TX handlers."""
    return CommTables([Comms(tables.comm_mappers, tables.action_mappers, tuple(handlers))])

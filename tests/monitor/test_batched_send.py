"""Frames queued together go out in one write, and still arrive as one WebSocket message each, in
order and intact: with frames encoded once for every client, and (when the client negotiated
permessage-deflate) encoded by the connection's own wsproto."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

import gatewayd
from gatewayd.connectors.monitor.ws import MonitorConnection
from gatewayd.web import wsbatch
from gatewayd.web.asgi_ws import AsgiWebSocket
from gatewayd.web.wsframe import SharedText
from tests.conftest import wait_for

from .helpers import FAKE_RECORD, next_frame, open_monitor

SIZES = (0, 50, 40_000, 1)  # payload bytes: frames with 1-, 2- and 8-byte length fields


def monitor_connection(daemon) -> MonitorConnection | None:
    live = [c for c in daemon.core.connections._live if isinstance(c, MonitorConnection)]
    return live[0] if len(live) == 1 and live[0].sender is not None else None


async def publish_burst(daemon) -> list[int]:
    """Records fanned out together: the session finds them all queued at its next turn."""
    items = [(FAKE_RECORD, {"payload": f"{n:02x}" * n}) for n in SIZES]
    return [record.seq for record in await daemon.core.hub.publish_many(items)]


def check(frames: list[dict], seqs: list[int]) -> None:
    assert [f["Seq"] for f in frames] == seqs
    assert [f["Payload"] for f in frames] == [f"{n:02x}" * n for n in SIZES]


async def test_a_burst_arrives_as_one_message_per_record(daemon):
    async with open_monitor(daemon) as ws:
        conn = await wait_for(lambda: monitor_connection(daemon))
        assert conn.sender.batched and conn.sender.shared_frames
        seqs = await publish_burst(daemon)
        check([await next_frame(ws) for _ in seqs], seqs)


class DeflateClient:
    """A bare wsproto client that offers permessage-deflate (trio-websocket offers none)."""

    def __init__(self, stream):
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.messages: list[str] = []
        self.extensions: list = []
        self._text = ""

    async def open(self, host: str, target: str, key: str) -> None:
        await self.stream.send_all(self.ws.send(Request(
            host=host, target=target, extensions=[PerMessageDeflate()],
            extra_headers=[(b"authorization", f"Bearer {key}".encode())])))
        while not await self._pump(AcceptConnection):
            pass

    async def _pump(self, wanted=None) -> bool:
        self.ws.receive_data(await self.stream.receive_some(65536))
        found = False
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.extensions = event.extensions
            elif isinstance(event, TextMessage):
                self._text += event.data
                if event.message_finished:
                    self.messages.append(self._text)
                    self._text = ""
            found = found or (wanted is not None and isinstance(event, wanted))
        return found

    async def messages_until(self, count: int) -> list[dict]:
        with trio.fail_after(10):
            while len(self.messages) < count:
                await self._pump()
        return [json.loads(text) for text in self.messages]


async def test_a_burst_to_a_compressing_client(daemon):
    stream = await trio.open_tcp_stream("127.0.0.1", daemon.port)
    async with stream:
        client = DeflateClient(stream)
        await client.open(f"127.0.0.1:{daemon.port}", "/monitor/communications", daemon.api_key)
        assert any(isinstance(ext, PerMessageDeflate) for ext in client.extensions)
        conn = await wait_for(lambda: monitor_connection(daemon))
        assert conn.sender.batched and not conn.sender.shared_frames
        seqs = await publish_burst(daemon)
        check(await client.messages_until(len(seqs)), seqs)


def test_hypercorn_internals_are_reached_from_one_module_only():
    """gatewayd/web/wsbatch.py is the one seam into hypercorn's WebSocket stream."""
    package = Path(gatewayd.__file__).parent
    reaching = sorted(str(path.relative_to(package.parent)) for path in package.rglob("*.py")
                      if "hypercorn.protocol" in path.read_text())
    assert reaching == ["gatewayd/web/wsbatch.py"]


def test_only_the_seam_looks_behind_an_asgi_callable():
    """Bound-method owners (`__self__`) of ASGI callables are hypercorn's objects: wsbatch.py only."""
    package = Path(gatewayd.__file__).parent / "web"
    reaching = sorted(path.name for path in package.glob("*.py") if "__self__" in path.read_text())
    assert reaching == ["wsbatch.py"]


class PlainAsgi:
    """An ASGI `send` of some other server: no hypercorn stream behind it."""

    def __init__(self):
        self.messages: list[dict] = []

    async def __call__(self, message: dict) -> None:
        self.messages.append(message)


async def test_without_hypercorn_each_message_is_one_asgi_send_in_order():
    send = PlainAsgi()
    websocket = AsgiWebSocket({"type": "websocket", "path": "/monitor/communications", "headers": []}, None, send)
    assert wsbatch.hypercorn_stream(send) is None and wsbatch.hypercorn_stream(print) is None
    sender = wsbatch.BatchSender.for_websocket(websocket)
    assert not sender.batched and not sender.shared_frames
    await sender.send([SharedText("a"), SharedText("b" * 70_000), SharedText("")])
    assert send.messages == [{"type": "websocket.send", "text": text} for text in ("a", "b" * 70_000, "")]


async def test_an_accepted_websocket_keeps_no_http_parser(daemon):
    """wsbatch.release_handshake: hypercorn's h11 connection and parsed handshake are let go once
    the upgrade is accepted, and frames still flow both ways."""
    import h11

    async with open_monitor(daemon) as ws:
        conn = await wait_for(lambda: monitor_connection(daemon))
        stream = wsbatch.hypercorn_stream(conn.ws.send_callable)
        assert not isinstance(stream.send.__self__.connection.h11_connection, h11.Connection)
        assert stream.handshake.accepted and not hasattr(stream.handshake, "key")  # the shared stand-in
        from hypercorn.trio.worker_context import TrioSingleTask
        assert not isinstance(stream.send.__self__.send.__self__.idle_task, TrioSingleTask)
        seqs = await publish_burst(daemon)
        check([await next_frame(ws) for _ in seqs], seqs)
        await ws.send_message("{}")  # a TX request it refuses: the read side works too
        assert (await next_frame(ws))["Result"] == "Fail"


async def test_a_device_websocket_keeps_neither_the_handshake_nor_the_request_headers(daemon):
    """A device connection lets go of the upgrade request's headers once accepted (a monitor keeps
    them: its batching reads the negotiated extensions later), and still works."""
    from trio_websocket import open_websocket_url

    from gatewayd.web.wsconn import WsConnection
    from tests.reliability.clients import create_device, register, telemetry

    device = await create_device(daemon.base_url, daemon.auth, "lean")
    async with open_websocket_url(daemon.ws_url + "/ws") as ws, open_monitor(daemon):
        assert (await register(ws, device))["type"] == "registered"
        conn = await wait_for(lambda: next((c for c in daemon.core.connections._live
                                            if isinstance(c, WsConnection) and c.path == "/ws"), None))
        assert list(conn.websocket.scope["headers"]) == []
        assert wsbatch.hypercorn_stream(conn.websocket.send_callable).handshake.accepted
        assert (await telemetry(ws, "t1"))["type"] == "ack"
        monitor = await wait_for(lambda: monitor_connection(daemon))
        assert monitor.ws.headers.get("authorization")

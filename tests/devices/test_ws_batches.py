"""Frames a device sends back to back are handled together (wsbatch.deliver_eagerly queues them,
WsConnection.run hands them to the session as one list), with the replies and records of frames
handled one by one: same order, acks only once durable."""

import json

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from gatewayd.connectors.devices import ws as device_ws
from gatewayd.web import wsbatch
from gatewayd.web.wsconn import WsConnection as ServerConnection
from tests.conftest import wait_for

from .helpers import create_device


class RawClient:
    """A wsproto client that writes many frames in one socket write."""

    def __init__(self, stream):
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.replies: list[dict] = []

    async def open(self, port: int) -> None:
        await self.stream.send_all(self.ws.send(Request(host=f"127.0.0.1:{port}", target="/ws")))
        while not any(isinstance(e, AcceptConnection) for e in await self._pump()):
            pass

    async def _pump(self) -> list:
        self.ws.receive_data(await self.stream.receive_some(65536))
        events = list(self.ws.events())
        self.replies += [json.loads(e.data) for e in events if isinstance(e, TextMessage)]
        return events

    async def send_together(self, frames: list[str]) -> None:
        await self.stream.send_all(b"".join(self.ws.send(TextMessage(data=f)) for f in frames))

    async def replies_until(self, count: int) -> list[dict]:
        with trio.fail_after(10):
            while len(self.replies) < count:
                await self._pump()
        return self.replies


def telemetry(n: int, **extra) -> str:
    return json.dumps({"type": "telemetry", "payload": {"n": n}, **extra})


async def test_a_burst_is_handled_in_batches_with_replies_in_frame_order(daemon, monkeypatch):
    batches: list[int] = []
    handle = device_ws.DeviceSession.on_frames

    async def counting(self, frames):
        batches.append(len(frames))
        await handle(self, frames)

    monkeypatch.setattr(device_ws.DeviceSession, "on_frames", counting)
    device = await create_device(daemon)
    frames = [telemetry(1), telemetry(2, id="a"), "{not json", telemetry(3),
              json.dumps({"type": "ping"}), telemetry(4, id=7), json.dumps({"type": "event", "event": "door",
                                                                           "id": "b"}),
              json.dumps({"type": "nope"}), telemetry(5), telemetry(6, id="c")]
    with daemon.core.hub.subscribe(100, lambda r: r.type in ("device.telemetry", "device.event")) as records:
        stream = await trio.open_tcp_stream("127.0.0.1", daemon.port)
        async with stream:
            client = RawClient(stream)
            await client.open(daemon.port)
            await client.send_together([json.dumps({"type": "register", "device_id": device["id"],
                                                    "token": device["token"]})])
            assert (await client.replies_until(1))[0]["type"] == "registered"
            conn = await wait_for(lambda: [c for c in daemon.core.connections._live if isinstance(c, ServerConnection)])
            stream_behind = wsbatch.hypercorn_stream(conn[0].websocket.send_callable)
            assert isinstance(stream_behind.app_put, wsbatch._EagerPut)  # hypercorn queues without a turn each
            await client.send_together(frames * 3)
            replies = await client.replies_until(1 + 3 * 7)
        stored = [records.receive.receive_nowait() for _ in range(3 * 7)]
    one_round = [("ack", "a"), ("error", "bad_json"), ("pong", None), ("ack", 7), ("ack", "b"),
                 ("error", "unknown_type"), ("ack", "c")]
    assert [(r["type"], r.get("id", r.get("code"))) for r in replies[1:]] == one_round * 3
    assert [r.data.get("payload", {}).get("n", r.data.get("event")) for r in stored] == [1, 2, 3, 4, "door", 5, 6] * 3
    assert [r.data.get("msg_id") for r in stored] == [None, "a", None, 7, "b", None, "c"] * 3
    assert max(batches) > 1 and sum(batches) == 1 + 3 * len(frames) - 1  # the register frame came alone


async def test_append_writes_the_record_store_writes(tmp_path):
    from gatewayd import ops
    from gatewayd.connectors.devices.messages import Event, Telemetry
    from gatewayd.gateway import open_core
    from gatewayd.journal.record import encode_line
    from tests.conftest import make_settings

    messages = [Telemetry({"t": 1.5}), Telemetry({"t": 2}, "2026-06-12T09:00:00Z", "m1"), Telemetry({}, None, 7),
                Event("door", {}), Event("door", {"zone": 2}, "2026-06-12T09:00:00Z", "e1")]
    async with open_core(make_settings(tmp_path / "state"), online=False) as core:
        device = core.state.devices.get((await ops.call(core, "device.create", {"name": "d"}))["id"])
        service = core.service("devices")
        for msg in messages:
            fields = {"payload": msg.payload, "device_ts": msg.ts, "msg_id": msg.msg_id}
            if isinstance(msg, Event):
                fields = {"event": msg.event, **fields}
            stored = await service.store(device, msg.kind, {k: v for k, v in fields.items() if v is not None},
                                         durable=True, dialect="json")
            batch = service.append(device, msg, True, dialect="json")
            await batch.wait()
            appended = core.hub.recent[-1]
            assert appended.seq == stored.seq + 1
            assert encode_line(appended._replace(seq=0, ts="")) == encode_line(stored._replace(seq=0, ts=""))

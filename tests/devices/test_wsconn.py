"""WsConnection without a network: heartbeat deadline on a mock clock, close requests, the writer."""

import trio
import trio.testing

from gatewayd.web.wsconn import ConnectionEnded, WsConnection


class FakeWebsocket:
    remote_addr = "192.0.2.1"
    path = "/ws"
    requested_subprotocols: list = []

    def __init__(self):
        self.inbox_send, self.inbox = trio.open_memory_channel(10)
        self.sent: list = []
        self.closed_with = None
        self.accepted = None

    async def accept(self, subprotocol=None, keep_request=True):
        self.accepted = subprotocol

    async def receive(self):
        return await self.inbox.receive()

    async def send(self, data):
        await trio.lowlevel.checkpoint()  # as a real send: a cancelled writer would stop here
        self.sent.append(data)

    async def close(self, code, reason=""):
        assert self.closed_with is None, "closed twice"
        await trio.lowlevel.checkpoint()
        self.closed_with = (code, reason)


async def test_heartbeat_moves_with_each_frame_and_expires(autojump_clock):
    ws = FakeWebsocket()
    conn = WsConnection(ws, heartbeat=90.0)
    received, ended = [], []

    async def session(c):
        try:
            while True:
                received.append((await c.receive(), trio.current_time()))
        except ConnectionEnded as exc:
            ended.append((exc.code, trio.current_time()))
            raise

    async def device():
        for _ in range(3):
            await trio.sleep(60)  # inside the 90 s window every time
            await ws.inbox_send.send("ping")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(device)
        await conn.run(session, subprotocol="gatewayd.json")
    assert [t for _, t in received] == [60, 120, 180]
    assert ended == [(4009, 270)]
    assert ws.closed_with[0] == 4009 and ws.accepted == "gatewayd.json"


async def test_close_request_ends_receive_and_flushes_queued_frames(autojump_clock):
    ws = FakeWebsocket()
    conn = WsConnection(ws, heartbeat=90.0, queue_size=2)
    outcome = []

    async def session(c):
        outcome.append(c.send_nowait("one") and c.send_nowait("two"))
        try:
            await c.receive()
        except ConnectionEnded as exc:
            outcome.append(exc.code)
        outcome.append(c.send_nowait("after close"))

    async def closer():
        await trio.sleep(5)
        conn.request_close(4002, "superseded")
        conn.request_close(4001, "later requests do not win")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(closer)
        await conn.run(session)
    with trio.fail_after(1):
        await conn.closed()
    assert outcome == [True, 4002, False] and ws.sent == ["one", "two"] and ws.closed_with == (4002, "superseded")


async def test_full_queue_refuses_and_send_times_out(autojump_clock):
    ws = FakeWebsocket()
    release, stalled = trio.Event(), trio.Event()

    async def stalled_send(data):
        stalled.set()
        await release.wait()  # a peer that does not read
        ws.sent.append(data)

    ws.send = stalled_send
    conn = WsConnection(ws, heartbeat=90.0, queue_size=1, send_timeout=3)

    seen = []

    async def session(c):
        try:
            seen.append(c.send_nowait("a"))
            await stalled.wait()  # the writer holds "a"
            seen.append(c.send_nowait("b"))  # fills the queue
            seen.append(c.send_nowait("c"))
            try:
                await c.send("d")
            except ConnectionEnded as exc:
                seen.append(exc.code)
        finally:
            release.set()

    await conn.run(session)
    assert seen == [True, True, False, 1013]
    assert ws.closed_with[0] == 1013 and ws.sent == ["a", "b"]


async def test_each_frame_hands_every_frame_on_and_ends_like_receive(autojump_clock):
    ws = FakeWebsocket()
    conn = WsConnection(ws, heartbeat=90.0)
    handled, ended = [], []

    async def handle(frame):
        handled.append((frame, trio.current_time()))
        if frame == "last":
            conn.request_close(4000, "enough")
            await trio.sleep(1)  # a close request also ends a handler under way

    async def session(c):
        try:
            await c.each_frame(handle)
        except ConnectionEnded as exc:
            ended.append((exc.code, trio.current_time()))
            raise

    async def peer():
        for frame in ("a", "b", "last"):
            await trio.sleep(60)
            await ws.inbox_send.send(frame)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer)
        await conn.run(session)
    assert handled == [("a", 60), ("b", 120), ("last", 180)]
    assert ended == [(4000, 180)] and ws.closed_with == (4000, "enough")

    idle_ws = FakeWebsocket()
    idle = WsConnection(idle_ws, heartbeat=30.0)
    began = trio.current_time()
    await idle.run(lambda c: c.each_frame(handle))
    assert idle_ws.closed_with[0] == 4009 and trio.current_time() - began == 30


class Reader:
    """A session's FrameReader: records the frames of each turn, and when the frames ended."""

    def __init__(self, conn, on_frames=None):
        self.conn = conn
        self.batches: list = []
        self.ended_with = None
        self._on_frames = on_frames

    async def on_frames(self, frames):
        self.batches.append((frames, trio.current_time()))
        if self._on_frames is not None:
            await self._on_frames(frames)

    def frames_ended(self):
        self.ended_with = (self.conn.close_code, trio.current_time())


async def test_a_reader_gets_every_frame_and_a_handler_under_way_finishes_before_the_close(autojump_clock):
    ws = FakeWebsocket()
    conn = WsConnection(ws, heartbeat=90.0, queue_size=4)
    helper = []

    async def handle(frames):
        await conn.send("ack")
        conn.request_close(4002, "superseded")  # arrives while this handler is under way
        await trio.sleep(1)  # not interrupted
        helper.append("handled")

    async def deliver():
        try:
            await trio.sleep_forever()
        finally:
            helper.append("ended")

    reader = Reader(conn, handle)

    async def session(c):
        c.spawn(deliver)
        return reader

    async def peer():
        await trio.sleep(10)
        await ws.inbox_send.send("store me")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer)
        await conn.run(session)
    assert reader.batches == [(["store me"], 10)] and reader.ended_with == (4002, 11)
    assert helper == ["handled", "ended"]
    assert ws.sent == ["ack"] and ws.closed_with == (4002, "superseded")


async def test_a_close_request_and_the_heartbeat_end_a_reader_s_wait(autojump_clock):
    ws = FakeWebsocket()
    conn = WsConnection(ws, heartbeat=90.0, queue_size=4)
    reader = Reader(conn)

    async def session(c):
        c.send_nowait("queued before the close")
        return reader

    async def closer():
        await trio.sleep(5)
        conn.request_close(1001, "server going away")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(closer)
        await conn.run(session)
    assert reader.ended_with == (1001, 5)
    assert ws.sent == ["queued before the close"] and ws.closed_with == (1001, "server going away")

    idle_ws = FakeWebsocket()
    idle = WsConnection(idle_ws, heartbeat=32.0)
    idle_reader = Reader(idle)
    began = trio.current_time()

    async def peer():
        await trio.sleep(20)
        await idle_ws.inbox_send.send("one frame")

    async def idle_session(c):
        return idle_reader

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer)
        await idle.run(idle_session)
    # The heartbeat ends it 32 s after the last frame, up to a sixteenth of it late.
    assert idle_ws.closed_with[0] == 4009 and idle_reader.batches == [(["one frame"], began + 20)]
    assert 20 + 32 <= idle_reader.ended_with[1] - began <= 20 + 32 + 2


async def test_on_end_is_called_however_the_connection_ended(autojump_clock):
    ended = []

    class Gone(FakeWebsocket):
        async def accept(self, subprotocol=None, keep_request=True):
            raise ConnectionEnded(None, "the client left during the handshake")

    await WsConnection(Gone(), heartbeat=10.0).run(lambda c: trio.sleep(0), on_end=lambda: ended.append("gone"))
    await WsConnection(FakeWebsocket(), heartbeat=10.0).run(lambda c: trio.sleep(1), on_end=lambda: ended.append("done"))
    assert ended == ["gone", "done"]


async def test_a_reader_gets_what_is_queued_and_what_came_before_the_peer_left(autojump_clock, monkeypatch):
    from gatewayd.web import wsconn

    monkeypatch.setattr(wsconn, "BATCH_MOST", 3)
    ws = FakeWebsocket()

    def receive_nowait():
        frame = ws.inbox.receive_nowait()
        if frame is None:
            raise ConnectionEnded(1000, "the peer left")
        return frame

    ws.receive_nowait = receive_nowait
    conn = WsConnection(ws, heartbeat=90.0)

    async def handle(frames):
        await trio.sleep(1)
        if frames[0] == "c":
            conn.request_close(4000, "enough")

    reader = Reader(conn, handle)

    async def session(c):
        return reader

    async def peer():
        await trio.sleep(10)
        for frame in ("a", "b", "c", "d"):  # queued together: one batch of three, then one
            ws.inbox_send.send_nowait(frame)
        await trio.sleep(10)
        for frame in ("c", "e", None):  # the last frames before the peer left are handled too
            ws.inbox_send.send_nowait(frame)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer)
        await conn.run(session)
    assert reader.batches == [(["a", "b", "c"], 10), (["d"], 11), (["c", "e"], 20)]
    assert reader.ended_with == (4000, 21)  # the close it asked for while the peer was leaving


async def test_eager_delivery_queues_without_a_turn_and_waits_when_full():
    from functools import partial

    from gatewayd.web.wsbatch import _put_eagerly

    send, receive = trio.open_memory_channel(2)
    put = partial(_put_eagerly, send.send_nowait, send.send)
    with trio.CancelScope() as scope:
        scope.cancel()
        await put("a")  # room: no checkpoint, so the cancelled scope does not stop it
        await put("b")
        await put("c")  # full: waits like the channel's own send (here: cancelled)
    assert scope.cancelled_caught
    async with trio.open_nursery() as nursery:
        nursery.start_soon(put, "c")
        await trio.testing.wait_all_tasks_blocked()
        assert [receive.receive_nowait(), receive.receive_nowait()] == ["a", "b"]
    assert receive.receive_nowait() == "c"

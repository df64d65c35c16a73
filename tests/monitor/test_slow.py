"""A monitor that stops reading is dropped (1013, with the `since` to resume from) while a fast
monitor and ingest go on untouched; resuming with that `since` leaves no gap."""

from __future__ import annotations

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.conftest import wait_for

from .helpers import FAKE_RECORD, close_of, monitor_url, next_frame, open_monitor

QUEUE = 8
BIG = "ab" * 100_000  # 200 kB frames: the socket buffers fill after a few dozen


@pytest.fixture
def daemon_sections():
    return {"monitor": {"queue_size": QUEUE}}


# The slow client shares the fast one's feed, or (with a filter of its own) is its feed's only reader.
@pytest.mark.parametrize("slow_query", ["", "?types=comm_rx"])
async def test_slow_client_dropped_while_fast_client_and_ingest_go_on(daemon, slow_query):
    hub = daemon.core.hub
    broadcast = daemon.core.service("monitor").broadcasts["communications"]
    headers = [(b"Authorization", f"Bearer {daemon.api_key}".encode())]
    fast_seqs: list[int] = []
    published: list[int] = []
    async with open_websocket_url(monitor_url(daemon) + slow_query, extra_headers=headers,
                           message_queue_size=1) as slow, \
            open_monitor(daemon) as fast:
        async with trio.open_nursery() as nursery:
            async def read_fast():
                while True:
                    fast_seqs.append((await next_frame(fast, 20))["Seq"])

            nursery.start_soon(read_fast)
            await wait_for(lambda: len(broadcast.sessions) == 2)
            # Ingest never waits for monitors: if it did, this loop would stall on the slow one.
            async def publish():
                published.append((await hub.publish(FAKE_RECORD, {"payload": BIG})).seq)
                # Keep within the fast client's queue: it is the pace ingest is checked against.
                while len(published) - len(fast_seqs) > QUEUE // 2:
                    await trio.sleep(0.001)

            with trio.fail_after(30):
                while len(broadcast.sessions) == 2:
                    await publish()
                for _ in range(20):  # and ingest goes on after the drop
                    await publish()
            await wait_for(lambda: fast_seqs and fast_seqs[-1] == published[-1], timeout=20)
            nursery.cancel_scope.cancel()
        assert fast_seqs == published  # the fast client got every frame, in order
        assert len(published) > QUEUE

        # The slow client, reading at last: what it was sent, then 1013 and where to resume.
        code, reason, frames = await close_of(slow, timeout=20)
    assert code == 1013
    slow_seqs = [f["Seq"] for f in frames]
    resume = int(reason.rsplit("since=", 1)[1])
    assert slow_seqs == published[:len(slow_seqs)]
    assert resume == (slow_seqs[-1] + 1 if slow_seqs else published[0])
    assert daemon.core.service("monitor").dropped == 1
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        metrics = (await client.get("/metrics")).text
    assert 'gatewayd_monitor_dropped_total{stream="communications"} 1' in metrics
    assert "gatewayd_monitor_sessions 0" in metrics

    async with open_monitor(daemon, since=resume) as again:
        rest = [(await next_frame(again))["Seq"] for _ in range(len(published) - len(slow_seqs))]
    assert slow_seqs + rest == published


async def test_a_client_flooding_tx_requests_is_refused_not_served_forever(daemon):
    async with open_monitor(daemon) as ws:
        for n in range(60):
            await ws.send_message(f'{{"function":"TX","Reference":"r{n}"}}')
        replies = [await next_frame(ws) for _ in range(60)]
    assert all(r["Result"] == "Fail" for r in replies)
    limited = [r for r in replies if r["Details"].startswith("too many requests")]
    assert limited and limited[-1]["Reference"] == "r59"

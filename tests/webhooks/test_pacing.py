"""The pacer: free while the daemon has room or nothing arrives; while records arrive and the loop
is saturated, a sender waits (1 / SHARE - 1) times its request's duration after it."""

from __future__ import annotations

import trio
import trio.testing

from gatewayd.connectors.webhooks import pacing
from gatewayd.connectors.webhooks.pacing import Pacer


async def test_senders_yield_only_while_ingest_saturates_the_loop(autojump_clock):
    load = {"busy": 0.95, "seq": 0}
    pacer = Pacer(lambda: load["busy"], lambda: load["seq"], clock=trio.current_time)

    async def request():
        await trio.sleep(0.01)
        return "ok"

    began = trio.current_time()
    for _ in range(10):  # busy, but nothing arriving: a backlog goes out at full speed
        assert await pacer.run(request) == "ok"
    assert pacer.paced == 0 and trio.current_time() - began < 0.2

    load["seq"] = 1000
    await trio.sleep(pacing.SAMPLE_EVERY)
    began = trio.current_time()
    await pacer.run(request)
    assert pacer.paced == 1
    assert abs((trio.current_time() - began) - 0.01 / pacing.SHARE) < 1e-6

    load["busy"] = 0.2  # records still arrive, but the loop has room
    load["seq"] = 5000
    await trio.sleep(pacing.SAMPLE_EVERY)
    await pacer.run(request)
    assert pacer.paced == 1


async def test_the_senders_share_one_budget(autojump_clock):
    senders = {"count": 3}
    pacer = Pacer(lambda: 0.95, lambda: 1000 * int(trio.current_time()), clock=trio.current_time,
                  senders=lambda: senders["count"])

    async def request():
        await trio.sleep(0.01)

    await trio.sleep(1.0)  # records arrive: 1000 per second
    pacer.saturated()
    await trio.sleep(1.0)
    began = trio.current_time()
    await pacer.run(request)
    assert pacer.paced == 1
    assert abs((trio.current_time() - began) - 0.01 * 3 / pacing.SHARE) < 1e-6  # a third of SHARE each

import httpx
import trio

from tests.conftest import wait_for


async def test_healthz_and_metrics(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        health = (await client.get("/healthz")).json()
        assert health["status"] == "ok" and health["journal_seq"] >= 2
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert "gatewayd_journal_appends_total" in metrics.text


async def test_restart_keeps_state(daemon):
    key_id = daemon.core.state.access.api_keys.copy()
    await daemon.restart()
    assert daemon.core.state.access.api_keys.keys() == key_id.keys()


async def test_the_daemon_measures_how_busy_its_event_loop_is(daemon):
    load = daemon.core.loop_load

    async def spin():  # never lets the loop wait for I/O
        while True:
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spin)
        await wait_for(lambda: load.busy() > 0.9, timeout=10, interval=0)
        nursery.cancel_scope.cancel()
    await wait_for(lambda: load.busy() < 0.5, timeout=10)
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        metrics = (await client.get("/metrics")).text
    line = next(line for line in metrics.splitlines() if line.startswith("gatewayd_event_loop_busy_ratio "))
    assert 0.0 <= float(line.split()[1]) <= 1.0

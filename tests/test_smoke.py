import httpx


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

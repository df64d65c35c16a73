"""Events from the journal to a real Mosquitto."""

from tests.conftest import wait_for
from tests.devices.helpers import create_device, open_websocket_url, register, send_json, ws_url

from .conftest import PREFIX


async def test_telemetry_reaches_the_broker(daemon, subscriber):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await send_json(ws, {"type": "telemetry", "payload": {"t": 21.5}, "id": 1})
        topic = f"{PREFIX}/device/{device['id']}/event/up"
        [(_, body)] = await subscriber.wait_for(lambda ms: [m for m in ms if m[0] == topic])
    assert body["payload"] == {"t": 21.5} and body["event"] == "up" and body["site"] == "site1"
    assert body["comm"]["CommType"] == "comm_rx"
    service = daemon.core.service("mqtt")
    await wait_for(lambda: service.acked_seq >= body["seq"])

"""What devices send: stored durably, acknowledged only once on disk, visible after a restart; the
XML dialect and its hardened parser."""

import httpx
import pytest
import trio

from gatewayd import ops
from gatewayd.gateway import open_core
from tests.conftest import DaemonProcess, make_settings, wait_for

from .helpers import api, close_code, create_device, open_websocket_url, receive_json, register, send_json, telemetry_items, ws_url


async def test_history_and_events_survive_a_restart(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await send_json(ws, {"type": "telemetry", "payload": {"temperature": 22.5, "humidity": 48}})
        await send_json(ws, {"type": "telemetry", "payload": {"temperature": 23.0}, "ts": "2026-06-12T09:00:00Z"})
        await send_json(ws, {"type": "event", "event": "door_open", "payload": {"zone": 2}, "id": "e1"})
        assert await receive_json(ws) == {"type": "ack", "id": "e1"}
    await wait_for(lambda: not daemon.core.state.devices.get(device["id"])["online"])
    await daemon.restart()

    telemetry = (await api(daemon, "GET", f"/api/devices/{device['id']}/telemetry")).json()
    assert [i["payload"] for i in telemetry["items"]] == [{"temperature": 22.5, "humidity": 48}, {"temperature": 23.0}]
    assert telemetry["items"][1]["device_ts"] == "2026-06-12T09:00:00Z"
    assert telemetry["latest"]["temperature"]["value"] == 23.0 and telemetry["latest"]["humidity"]["value"] == 48
    limited = (await api(daemon, "GET", f"/api/devices/{device['id']}/telemetry", params={"limit": 1})).json()
    assert [i["payload"] for i in limited["items"]] == [{"temperature": 23.0}]
    later = telemetry["items"][1]["ts"]
    ranged = (await api(daemon, "GET", f"/api/devices/{device['id']}/telemetry", params={"since": later})).json()
    assert len(ranged["items"]) == 1

    events = (await api(daemon, "GET", "/api/events")).json()["items"]
    kinds = [e["type"] for e in events if e["device_id"] == device["id"]]
    assert kinds == ["device_connected", "device_online", "device_event", "device_disconnected", "device_offline"]
    door = [e for e in events if e["type"] == "device_event"][0]
    assert door["event"] == "door_open" and door["payload"] == {"zone": 2}
    since = (await api(daemon, "GET", "/api/events", params={"since": door["seq"]})).json()["items"]
    assert [e["type"] for e in since] == ["device_disconnected", "device_offline"]


async def test_after_a_crash_devices_are_offline_and_keep_last_seen(tmp_path):
    state_dir = tmp_path / "state"
    async with open_core(make_settings(state_dir), online=False) as core:  # as the offline CLI does
        key = (await ops.call(core, "apikey.create", {"name": "t"}))["key"]
        device = await ops.call(core, "device.create", {"name": "crashy"})
    headers = {"Authorization": f"Bearer {key}"}
    proc = DaemonProcess(state_dir).start()
    try:
        async with open_websocket_url(f"ws://127.0.0.1:{proc.port}/ws") as ws:
            await register(ws, device)
            await send_json(ws, {"type": "telemetry", "payload": {"a": 1}, "id": 1})
            await receive_json(ws)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proc.port}", headers=headers) as client:
                before = (await client.get(f"/api/devices/{device['id']}")).json()
            assert before["status"] == "online"
            proc.kill()  # no goodbye: the journal ends with the device online
        proc.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proc.port}", headers=headers) as client:
            after = (await client.get(f"/api/devices/{device['id']}")).json()
        assert after["status"] == "offline" and after["last_seen"] == before["last_seen"]
    finally:
        proc.stop()


async def test_ack_waits_for_fsync(daemon):
    device = await create_device(daemon)
    writer = daemon.core.writer
    release = trio.Event()
    real_sync = writer.ops.sync
    token = trio.lowlevel.current_trio_token()  # the writer's worker thread is not trio's to_thread

    def slow_sync(fd):
        trio.from_thread.run(release.wait, trio_token=token)
        real_sync(fd)

    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        writer.ops.sync = slow_sync
        try:
            await send_json(ws, {"type": "telemetry", "payload": {"v": 1}, "id": 99})
            with trio.move_on_after(0.3):
                early = await ws.get_message()
                pytest.fail(f"acknowledged before the record was durable: {early}")
            record_seq = daemon.core.state.seq  # the telemetry record, applied but not durable
            assert writer.durable_seq < record_seq
            release.set()
            assert await receive_json(ws) == {"type": "ack", "id": 99}
            assert writer.durable_seq >= record_seq
        finally:
            writer.ops.sync = real_sync
            release.set()


async def test_journal_failure_gives_a_retryable_error_and_no_ack(daemon):
    device = await create_device(daemon)
    writer = daemon.core.writer
    real_sync = writer.ops.sync

    def failing_sync(fd):
        raise OSError(5, "I/O error")

    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        writer.ops.sync = failing_sync
        try:
            await send_json(ws, {"type": "telemetry", "payload": {"v": 1}, "id": 5})
            reply = await receive_json(ws)
            assert reply["type"] == "error" and reply["code"] == "unavailable"
        finally:
            writer.ops.sync = real_sync
        await wait_for(lambda: writer.failed is None, timeout=10)
        await send_json(ws, {"type": "telemetry", "payload": {"v": 2}, "id": 6})
        assert await receive_json(ws) == {"type": "ack", "id": 6}


async def _xml_reply(ws, timeout: float = 5.0) -> str:
    with trio.fail_after(timeout):
        return await ws.get_message()


async def test_xml_dialect_by_first_frame(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await ws.send_message(f'<register device_id="{device["id"]}" token="{device["token"]}"/>')
        assert (await _xml_reply(ws)).startswith(f'<registered device_id="{device["id"]}" server_time="')
        await ws.send_message('<telemetry id="7"><temperature>22.5</temperature><humidity>48</humidity></telemetry>')
        assert await _xml_reply(ws) == '<ack id="7"/>'
        await ws.send_message('<event name="door_open" id="8"><zone>2</zone></event>')
        assert await _xml_reply(ws) == '<ack id="8"/>'
        await ws.send_message("<ping/>")
        assert (await _xml_reply(ws)).startswith("<pong server_time=")
        await ws.send_message('{"type":"ping"}')  # the dialect is fixed for the connection
        assert (await _xml_reply(ws)).startswith('<error code="bad_xml">')
    stored = (await telemetry_items(daemon.core, device["id"]))[-1]["payload"]
    assert stored == {"temperature": 22.5, "humidity": 48}


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<telemetry id="1"><v>&lol3;</v></telemetry>"""
EXTERNAL = """<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<telemetry><v>&x;</v></telemetry>"""
DTD_ONLY = '<!DOCTYPE telemetry SYSTEM "http://example.invalid/t.dtd"><telemetry><v>1</v></telemetry>'


async def test_xml_attacks_are_refused_and_the_connection_stays(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon), subprotocols=["gatewayd.xml"]) as ws:
        assert ws.subprotocol == "gatewayd.xml"
        await ws.send_message(f'<register device_id="{device["id"]}" token="{device["token"]}"/>')
        assert (await _xml_reply(ws)).startswith("<registered ")
        for attack in (BILLION_LAUGHS, EXTERNAL, DTD_ONLY):
            await ws.send_message(attack)
            assert (await _xml_reply(ws)).startswith('<error code="bad_xml">')
        await ws.send_message('<telemetry id="2"><v>1</v></telemetry>')
        assert await _xml_reply(ws) == '<ack id="2"/>'
    assert [t["payload"] for t in await telemetry_items(daemon.core, device["id"])] == [{"v": 1}]


async def test_json_subprotocol_is_echoed(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon), subprotocols=["other", "gatewayd.json"]) as ws:
        assert ws.subprotocol == "gatewayd.json"
        await register(ws, device)
        await ws.send_message("<ping/>")
        assert (await receive_json(ws))["code"] == "bad_json"


async def test_unregistered_close_reports_no_presence(daemon):
    async with open_websocket_url(ws_url(daemon)) as ws:
        await send_json(ws, {"type": "register", "device_id": "nobody", "token": "tok_x"})
        await close_code(ws)
    assert not [e for e in daemon.core.state.devices.events]

"""Registration on /ws: accepted, refused (wrong token, unknown, disabled), late, and the limits."""

import pytest
import trio

from tests.conftest import wait_for

from .helpers import (api, close_code, create_device, open_websocket_url, receive_json, register, send_json,
                      telemetry_items, ws_url)

sections = pytest.mark.parametrize


async def test_register_telemetry_ping(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        reply = await register(ws, device)
        assert reply["device_id"] == device["id"] and reply["server_time"].endswith("Z")
        assert daemon.core.state.devices.get(device["id"])["online"]
        await send_json(ws, {"type": "telemetry", "payload": {"t": 21.5}, "id": 7})
        assert await receive_json(ws) == {"type": "ack", "id": 7}
        await send_json(ws, {"type": "ping"})
        assert (await receive_json(ws))["type"] == "pong"
    await wait_for(lambda: not daemon.core.state.devices.get(device["id"])["online"])
    kinds = [e["type"] for e in daemon.core.state.devices.events if e["device_id"] == device["id"]]
    assert kinds == ["device_connected", "device_online", "device_disconnected", "device_offline"]


async def _refused(daemon, device_id: str, token: str) -> tuple[dict, int]:
    async with open_websocket_url(ws_url(daemon)) as ws:
        await send_json(ws, {"type": "register", "device_id": device_id, "token": token})
        error = await receive_json(ws)
        return error, await close_code(ws)


async def test_wrong_token_unknown_device_disabled(daemon):
    device = await create_device(daemon)
    failures = []
    with daemon.core.hub.subscribe(100, lambda r: r.type == "auth.failed") as sub:
        error, code = await _refused(daemon, device["id"], "tok_wrong")
        assert (error["type"], error["code"], code) == ("error", "auth_failed", 4001)
        error, code = await _refused(daemon, "3f1e1c2a-0000-4000-8000-000000000000", device["token"])
        assert (error["code"], code) == ("auth_failed", 4001)
        assert (await api(daemon, "POST", f"/api/devices/{device['id']}/disable")).status_code == 200
        error, code = await _refused(daemon, device["id"], device["token"])
        assert (error["code"], code) == ("auth_failed", 4001) and "disabled" in error["message"]
        with trio.fail_after(5):
            for _ in range(3):
                failures.append(await sub.receive.receive())
    assert {f.data["kind"] for f in failures} == {"device_token"}
    assert all(device["token"] not in str(f.data) for f in failures)


@sections("daemon_sections", [{"security": {"login_failures_per_minute": 2}}])
async def test_repeated_failures_block_the_source(daemon):
    device = await create_device(daemon)
    for _ in range(2):
        await _refused(daemon, device["id"], "tok_wrong")
    error, code = await _refused(daemon, device["id"], device["token"])  # even the right token now
    assert code == 4001 and "too many" in error["message"]


@sections("daemon_sections", [{"devices": {"register_timeout": 0.3}}])
async def test_late_registration_is_closed_with_4008(daemon):
    async with open_websocket_url(ws_url(daemon)) as ws:
        assert await close_code(ws) == 4008


@sections("daemon_sections", [{"devices": {"register_timeout": 0.5}}])
async def test_messages_before_register_get_not_registered(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await send_json(ws, {"type": "telemetry", "payload": {"a": 1}})
        error = await receive_json(ws)
        assert error["code"] == "not_registered"
        await register(ws, device)
    assert await telemetry_items(daemon.core, device["id"]) == []


async def test_bad_messages_keep_the_connection_until_too_many(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        for frame, code in (("nope", "bad_json"), ('{"type":"dance"}', "unknown_type"),
                            ('{"type":"telemetry"}', "invalid"), ("[1]", "bad_json")):
            await ws.send_message(frame)
            assert (await receive_json(ws))["code"] == code
        await send_json(ws, {"type": "telemetry", "payload": {"ok": True}, "id": "x"})
        assert (await receive_json(ws))["type"] == "ack"
        for _ in range(10):
            await ws.send_message("{")
        assert await close_code(ws) == 4000


@sections("daemon_sections", [{"devices": {"max_frame_bytes": 1024}}])
async def test_oversized_frame_closes_with_1009(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        await send_json(ws, {"type": "telemetry", "payload": {"blob": "x" * 2000}})
        assert await close_code(ws) == 1009
    assert await telemetry_items(daemon.core, device["id"]) == []


@sections("daemon_sections", [{"devices": {"rate_per_second": 0.01, "rate_burst": 3}}])
async def test_rate_limit_refuses_and_does_not_store(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        replies = []
        for i in range(5):
            await send_json(ws, {"type": "telemetry", "payload": {"i": i}, "id": i})
            replies.append(await receive_json(ws))
    assert [r["type"] for r in replies] == ["ack", "ack", "ack", "error", "error"]
    assert replies[3]["code"] == "rate_limited"
    stored = [t["payload"]["i"] for t in await telemetry_items(daemon.core, device["id"])]
    assert stored == [0, 1, 2]


async def test_reconnect_supersedes_with_no_gap(daemon):
    device = await create_device(daemon)
    with daemon.core.hub.subscribe(1000, lambda r: r.type.startswith("device.")) as sub:
        async with open_websocket_url(ws_url(daemon)) as first:
            await register(first, device)
            async with open_websocket_url(ws_url(daemon)) as second:
                await register(second, device)
                assert await close_code(first) == 4002
                await send_json(second, {"type": "telemetry", "payload": {"n": 2}, "id": 2})
                assert (await receive_json(second))["type"] == "ack"
                assert daemon.core.state.devices.get(device["id"])["online"]
        await wait_for(lambda: not daemon.core.state.devices.get(device["id"])["online"])
        types = []
        with trio.fail_after(5):
            async for record in sub.receive:
                types.append(record.type)
                if record.type == "device.offline":
                    break
    presence = [t for t in types if t != "device.telemetry"]
    assert presence == ["device.connected", "device.online", "device.connected", "device.disconnected",
                        "device.disconnected", "device.offline"]


@sections("daemon_sections", [{"presence": {"ws_timeout": 1.0}}])
async def test_silence_closes_and_marks_offline(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        assert await close_code(ws, timeout=5) == 4009
    state = daemon.core.state.devices.get(device["id"])
    await wait_for(lambda: not state["online"])
    offline = [e for e in daemon.core.state.devices.events if e["type"] == "device_offline"]
    assert offline and "nothing received" in offline[-1]["reason"]


async def test_token_rotation_cuts_the_live_connection(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        rotated = (await api(daemon, "POST", f"/api/devices/{device['id']}/token")).json()
        assert rotated["token"].startswith("tok_") and rotated["token"] != device["token"]
        assert await close_code(ws) == 4001
    error, code = await _refused(daemon, device["id"], device["token"])
    assert code == 4001
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device, rotated["token"])


async def test_terminal_only_path_refuses_devices(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon, "/")) as ws:
        await send_json(ws, {"type": "register", "device_id": device["id"], "token": device["token"]})
        assert await close_code(ws) == 4000


async def test_shutdown_closes_devices_with_1001(daemon):
    device = await create_device(daemon)
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        daemon.core.stopping.set()
        assert await close_code(ws) == 1001
    await daemon.stop()


async def test_a_burst_is_answered_in_full_when_the_device_reads(daemon):
    device = await create_device(daemon)
    got = []
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        async with trio.open_nursery() as nursery:
            async def read():
                while len(got) < 300:
                    got.append(await receive_json(ws))

            nursery.start_soon(read)
            for _ in range(300):  # far beyond devices.send_queue (64): replies wait for room
                await send_json(ws, {"type": "ping"})
    kinds = {r["type"] if r["type"] != "error" else r["code"] for r in got}
    assert len(got) == 300 and kinds <= {"pong", "rate_limited"}

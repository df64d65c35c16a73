"""/dashboard/ws: who may open it, what it streams, and resuming with `since` without a gap."""

import json

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from gatewayd.connectors.monitor import dashboard_ws
from tests.devices.helpers import create_device, register, send_json, telemetry_items, ws_url

from .helpers import logged_in


def _feed_url(daemon, query: str = "") -> str:
    return f"{daemon.ws_url}/dashboard/ws{query}"


def _session_headers(http, origin: str | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"Cookie", f"gatewayd_session={http.cookies['gatewayd_session']}".encode())]
    if origin is not None:
        headers.append((b"Origin", origin.encode()))
    return headers


async def _next(ws, timeout: float = 5.0) -> dict:
    with trio.fail_after(timeout):
        return json.loads(await ws.get_message())


async def _until(ws, predicate, timeout: float = 5.0) -> dict:
    with trio.fail_after(timeout):
        while True:
            frame = json.loads(await ws.get_message())
            if predicate(frame):
                return frame


async def _rejected(url: str, headers=None) -> int:
    with pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(url, extra_headers=headers or []):
            pass
    return info.value.status_code


async def test_refused_without_login_with_a_bad_key_or_from_another_origin(daemon):
    assert await _rejected(_feed_url(daemon)) == 401
    assert await _rejected(_feed_url(daemon, "?key=gwk_00000000_nope")) == 401
    async with logged_in(daemon) as (http, _):
        origin = f"http://127.0.0.1:{daemon.port}"
        assert await _rejected(_feed_url(daemon), _session_headers(http, "http://evil.example")) == 401
        assert await _rejected(_feed_url(daemon, "?since=abc"), _session_headers(http, origin)) == 400
        assert await _rejected(_feed_url(daemon, "?categories=nope"), _session_headers(http, origin)) == 400
        async with open_websocket_url(_feed_url(daemon), extra_headers=_session_headers(http, origin)) as ws:
            assert (await _next(ws))["kind"] == "hello"


async def test_streams_presence_telemetry_and_commands_for_one_device(daemon):
    device = await create_device(daemon)
    other = await create_device(daemon, "other")
    query = f"?key={daemon.api_key}&device={device['id']}"
    async with open_websocket_url(_feed_url(daemon, query)) as feed:
        hello = await _next(feed)
        assert hello["kind"] == "hello" and hello["seq"] == daemon.core.hub.fanned_seq
        async with open_websocket_url(ws_url(daemon)) as ws:
            await register(ws, other)
        async with open_websocket_url(ws_url(daemon)) as ws:
            await register(ws, device)
            connected = await _next(feed)
            assert connected["type"] == "device_connected" and connected["device_id"] == device["id"]
            assert connected["category"] == "presence" and "connected from 127.0.0.1" in connected["text"]
            assert (await _next(feed))["type"] == "device_online"
            await send_json(ws, {"type": "telemetry", "payload": {"t": 21.5}})
            telemetry = await _next(feed)
            assert telemetry["type"] == "telemetry" and telemetry["payload"] == {"t": 21.5}
        disconnected = await _until(feed, lambda e: e.get("type") == "device_disconnected")
        assert disconnected["device_id"] == device["id"]
        await feed.send_message('{"type":"ping"}')
        assert await _until(feed, lambda e: e.get("kind") == "pong")


async def test_never_sends_hashes_or_secrets(daemon):
    async with open_websocket_url(_feed_url(daemon, f"?key={daemon.api_key}&since=1")) as feed:
        device = await create_device(daemon)
        frames = [await _until(feed, lambda e: e.get("type") == "device_created")]
        rotated = await create_device(daemon, "second")
        frames.append(await _until(feed, lambda e: e.get("device_id") == rotated["id"]))
    text = json.dumps(frames)
    assert device["token"] not in text and "sha256" not in text and "hash" not in text


async def _events_after(daemon, since: int) -> list[int]:
    """The seqs of the events a fresh client gets with `since` before its hello (the replay)."""
    seqs = []
    async with open_websocket_url(_feed_url(daemon, f"?key={daemon.api_key}&since={since}")) as feed:
        while True:
            frame = await _next(feed)
            if frame.get("kind") == "hello":
                assert frame["seq"] >= (seqs[-1] if seqs else since - 1)
                return seqs
            seqs.append(frame["seq"])


async def test_since_replays_exactly_what_was_missed(daemon):
    device = await create_device(daemon)
    start = daemon.core.hub.fanned_seq + 1
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        for i in range(20):
            await send_json(ws, {"type": "telemetry", "payload": {"i": i}, "id": i})
            await ws.get_message()  # the ack: durable
    replayed = await _events_after(daemon, start)
    assert replayed == sorted(set(replayed)) and replayed[0] >= start  # in order, no duplicate
    telemetry_seqs = [t["seq"] for t in await telemetry_items(daemon.core, device["id"])]
    assert len(telemetry_seqs) == 20 and set(telemetry_seqs) <= set(replayed)
    middle = telemetry_seqs[10]
    later = await _events_after(daemon, middle)
    assert later[: len(replayed) - replayed.index(middle)] == replayed[replayed.index(middle):]


async def test_a_slow_client_is_dropped_with_1013_and_resumes_without_a_gap(daemon, monkeypatch):
    monkeypatch.setattr(dashboard_ws, "QUEUE_RECORDS", 5)
    device = await create_device(daemon)
    core = daemon.core
    received: list[int] = []
    async with open_websocket_url(_feed_url(daemon, f"?key={daemon.api_key}&categories=telemetry")) as feed:
        assert (await _next(feed))["kind"] == "hello"
        await core.hub.publish_many([("device.telemetry", {"device_id": device["id"], "name": "sensor",
                                                           "connector": "ws", "payload": {"i": i}})
                                     for i in range(50)])
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                received.append((await _next(feed))["seq"])
    reason = closed.value.reason
    assert reason.code == 1013 and "resume with since=" in reason.reason
    resume = int(reason.reason.rsplit("=", 1)[1])
    assert resume == received[-1] + 1 and len(received) < 50
    async with open_websocket_url(_feed_url(daemon, f"?key={daemon.api_key}&categories=telemetry&since={resume}")) as feed:
        while len(received) < 50:
            frame = await _next(feed)
            if frame.get("kind") != "hello":
                received.append(frame["seq"])
    assert received == list(range(received[0], received[0] + 50))


async def test_server_stop_closes_the_feed_with_1001(daemon):
    async with open_websocket_url(_feed_url(daemon, f"?key={daemon.api_key}")) as feed:
        assert (await _next(feed))["kind"] == "hello"
        daemon.core.stopping.set()
        with pytest.raises(ConnectionClosed) as closed:
            await _until(feed, lambda e: False)
    assert closed.value.reason.code == 1001

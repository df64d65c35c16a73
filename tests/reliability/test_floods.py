"""Floods: a device far above its rate limit, oversized frames and bodies on every endpoint, and
slowloris-style partial requests. The daemon refuses precisely and others are not harmed."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from gatewayd.journal.reader import JournalReader
from gatewayd.web.app import create_app
from tests.conftest import wait_for
from tests.reliability.clients import create_device, register, telemetry
from tests.reliability.figures import count
from tests.reliability.rawws import RawWebSocket
from tests.reliability.test_route_auth import SKIPPED_METHODS, concrete

RATE, BURST = 20.0, 40
MAX_FRAME = 4096
MAX_BODY = 8192


@pytest.fixture
def daemon_sections():
    return {"devices": {"rate_per_second": RATE, "rate_burst": BURST, "max_frame_bytes": MAX_FRAME},
            "server": {"max_body_bytes": MAX_BODY}, "terminals": {"auto_accept": True}}


async def test_a_device_far_above_its_rate_limit_is_held_to_it_and_others_are_not(daemon, nursery):
    flooder = await create_device(daemon.base_url, daemon.auth, "flooder")
    calm = await create_device(daemon.base_url, daemon.auth, "calm")
    replies: list[dict] = []
    flood = await RawWebSocket.connect(daemon.port, "/ws")
    await flood.send(json.dumps({"type": "register", "device_id": flooder["id"], "token": flooder["token"]}))
    assert json.loads(await flood.receive())["type"] == "registered"

    async def read_replies():
        try:
            while True:
                replies.append(json.loads(await flood.receive(10)))
        except (ConnectionError, trio.ClosedResourceError):
            pass

    nursery.start_soon(read_replies)
    began = time.monotonic()
    with trio.move_on_after(10):
        try:
            for n in range(1000):
                await flood.send(json.dumps({"type": "telemetry", "id": f"f{n}", "payload": {"n": n}}))
        except OSError:
            pass
    await wait_for(lambda: len(replies) == 1000 or flood.close_code is not None, timeout=10)
    elapsed = time.monotonic() - began
    async with open_websocket_url(daemon.ws_url + "/ws") as ws:
        assert (await register(ws, calm))["type"] == "registered"
        for n in range(20):  # the calm device is not affected by its neighbour's limit
            assert (await telemetry(ws, f"c{n}"))["type"] == "ack"
    flood.close()
    # Held to its limit: refused with rate_limited, or (a flooder that outpaces its own replies)
    # cut with 1013; never stored beyond the bucket.
    assert flood.close_code in (None, 1013), flood.close_code
    limit = BURST + RATE * elapsed + 5
    stored = [r for r in JournalReader(daemon.state_dir / "journal").records()
              if r.type == "device.telemetry" and r.data["device_id"] == flooder["id"]]
    assert len(stored) <= limit and sum(r["type"] == "ack" for r in replies) <= limit, (len(stored), elapsed)
    count("flood: messages refused by the rate limit", sum(r.get("code") == "rate_limited" for r in replies))


async def test_a_burst_of_pings_from_a_device_that_reads_its_replies_is_answered(daemon, nursery):
    """Regression: replies once went out with send_nowait, and a burst that outran the outbox closed
    the connection with 1013 "not reading replies" although the device read every one."""
    device = await create_device(daemon.base_url, daemon.auth)
    got: list = []
    ws = await RawWebSocket.connect(daemon.port, "/ws")
    await ws.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
    assert json.loads(await ws.receive())["type"] == "registered"

    async def read():
        try:
            while True:
                got.append(json.loads(await ws.receive(10)))
        except (ConnectionError, trio.ClosedResourceError):
            pass

    nursery.start_soon(read)
    for _ in range(200):  # pongs while the bucket lasts, then rate_limited errors: every one a reply
        await ws.send(json.dumps({"type": "ping"}))
    await wait_for(lambda: len(got) == 200 or ws.close_code is not None, timeout=10)
    ws.close()
    assert ws.close_code is None, f"cut with {ws.close_code} after {len(got)} replies"
    assert len(got) == 200


async def test_oversized_websocket_frames_are_refused_with_1009_on_every_socket(daemon):
    auth = [(b"Authorization", f"Bearer {daemon.api_key}".encode())]
    paths = {rule.rule for rule in create_app(daemon.core).url_map.iter_rules() if getattr(rule, "websocket", False)}
    assert {"/ws", "/monitor/communications"} <= paths
    checked = 0
    for path in sorted(paths):
        if "<" in path:
            continue
        headers = auth + [(b"Origin", daemon.base_url.encode())]
        try:
            async with open_websocket_url(daemon.ws_url + path, extra_headers=headers) as ws:
                await ws.send_message("x" * (MAX_FRAME + 1))
                with trio.fail_after(5):
                    while True:
                        await ws.get_message()
        except ConnectionClosed as exc:
            assert exc.reason.code == 1009, (path, exc.reason)
            checked += 1
        except Exception as exc:  # noqa: BLE001 - a handshake refused (dashboard: no session) is fine too
            assert "401" in str(exc) or "403" in str(exc), (path, exc)
    assert checked >= 3
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_oversized_bodies_are_refused_on_every_route_that_takes_one(daemon):
    body = b'{"pad":"' + b"x" * (MAX_BODY * 2) + b'"}'
    problems, checked = [], 0
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as client:
        for rule in create_app(daemon.core).url_map.iter_rules():
            if getattr(rule, "websocket", False):
                continue
            for method in sorted((rule.methods or set()) - SKIPPED_METHODS - {"GET", "DELETE"}):
                for headers in ({}, daemon.auth):
                    response = await client.request(method, concrete(rule), content=body, headers={
                        **headers, "Content-Type": "application/json", "Origin": daemon.base_url})
                    checked += 1
                    # 413, or refused before the body matters (401/403/404/429); never served or a 5xx
                    if not 400 <= response.status_code < 500:
                        problems.append(f"{method} {rule.rule}: {response.status_code} {response.text[:100]!r}")
        assert (await client.get("/healthz")).status_code == 200
    count("oversized bodies refused", checked)
    assert not problems, "\n".join(problems)


async def test_oversized_headers_are_refused(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as client:
        try:
            response = await client.get("/healthz", headers={"X-Pad": "y" * 64 * 1024})
            assert response.status_code in (400, 413, 431)
        except httpx.RemoteProtocolError:
            pass  # the connection was closed on it: refused too
        assert (await client.get("/healthz")).status_code == 200


SLOW_CLIENTS = 300


async def test_slowloris_partial_requests_do_not_starve_real_clients(daemon):
    sockets = []
    for i in range(SLOW_CLIENTS):
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.connect(("127.0.0.1", daemon.port))
        await sock.send(b"POST /api/device-http HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n")
        sockets.append(sock)
    try:
        for round_ in range(3):
            for sock in sockets:  # a header line now and then: never complete, never idle
                try:
                    await sock.send(b"X-a: b\r\n")
                except OSError:
                    pass
            began = time.monotonic()
            async with httpx.AsyncClient(base_url=daemon.base_url, timeout=5) as client:
                assert (await client.get("/healthz")).status_code == 200
                reply = await client.post("/api/device-http", content=json.dumps({"cmd": "checklive", "sn": "SL1"}))
                assert reply.status_code == 200
            assert time.monotonic() - began < 2.0
    finally:
        for sock in sockets:
            sock.close()
    count("slowloris connections held open against the daemon", SLOW_CLIENTS)



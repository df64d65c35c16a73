"""Admission on the device WebSocket: no single address can keep others from registering."""

from __future__ import annotations

import json

import pytest
import trio

from gatewayd.ratelimit import source_key
from gatewayd.connectors.devices.ws import ADMISSION
from tests.conftest import wait_for
from tests.reliability.rawws import RawWebSocket, Rejected

from .helpers import create_device

sections = pytest.mark.parametrize


async def idle_sockets(port: int, source: str, n: int) -> tuple[list[RawWebSocket], list[int]]:
    """Open `n` WebSockets from `source` that never send anything; (the open ones, refusal statuses)."""
    opened, refused = [], []
    for _ in range(n):
        try:
            opened.append(await RawWebSocket.connect(port, "/ws", source=source))
        except Rejected as exc:
            refused.append(exc.status)
    return opened, refused


async def register_from(daemon, device: dict, source: str) -> dict:
    ws = await RawWebSocket.connect(daemon.port, "/ws", source=source)
    try:
        await ws.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
        return json.loads(await ws.receive())
    finally:
        ws.close()


@sections("daemon_sections", [{"devices": {"max_registering": 4, "max_unregistered_per_source": 8,
                                           "register_timeout": 30.0, "first_frame_timeout": 30.0}}])
async def test_idle_sockets_from_one_address_do_not_keep_a_device_elsewhere_from_registering(daemon):
    device = await create_device(daemon, "legit")
    opened, refused = await idle_sockets(daemon.port, "127.0.0.1", 40)
    try:
        assert len(opened) == 8 and set(refused) == {503}  # the rest was refused at the handshake
        with trio.fail_after(5):  # far below register_timeout: no slot was held by the idle ones
            reply = await register_from(daemon, device, "127.0.0.2")
        assert reply["type"] == "registered"
        metrics = daemon.core.metrics.counters
        assert metrics[("gatewayd_ws_refused_total", (("reason", "unregistered_per_source"),))] == 32
    finally:
        for ws in opened:
            ws.close()


@sections("daemon_sections", [{"devices": {"max_unregistered_per_source": 2}}])
async def test_a_registered_connection_no_longer_counts_against_its_address(daemon):
    device = await create_device(daemon, "first")
    first = await RawWebSocket.connect(daemon.port, "/ws")
    second = await RawWebSocket.connect(daemon.port, "/ws")
    with pytest.raises(Rejected) as refused:
        await RawWebSocket.connect(daemon.port, "/ws")
    assert refused.value.status == 503
    await first.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
    assert json.loads(await first.receive())["type"] == "registered"
    third = await RawWebSocket.connect(daemon.port, "/ws")  # room again
    for ws in (first, second, third):
        ws.close()
    admission = daemon.core.extras[ADMISSION]
    await wait_for(lambda: admission.unregistered("127.0.0.1") == 0)


@sections("daemon_sections", [{"devices": {"handshakes_per_second_per_source": 0.01,
                                           "handshake_burst_per_source": 2}}])
async def test_handshakes_per_second_are_limited_per_address(daemon):
    opened = [await RawWebSocket.connect(daemon.port, "/ws") for _ in range(2)]
    with pytest.raises(Rejected) as refused:
        await RawWebSocket.connect(daemon.port, "/ws")
    assert refused.value.status == 503
    opened.append(await RawWebSocket.connect(daemon.port, "/ws", source="127.0.0.3"))  # another address
    for ws in opened:
        ws.close()
    assert daemon.core.metrics.counters[("gatewayd_ws_refused_total", (("reason", "handshake_rate"),))] == 1


@sections("daemon_sections", [{"devices": {"first_frame_timeout": 0.3, "register_timeout": 30.0}}])
async def test_a_socket_that_sends_nothing_is_cut_after_the_first_frame_timeout(daemon):
    ws = await RawWebSocket.connect(daemon.port, "/ws")
    assert await ws.wait_closed(timeout=10) == 4008
    ws.close()


def test_per_source_keys():
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("2001:db8:1:2:3:4:5:6") == source_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert source_key("not an address") == "not an address"


async def _hold_every_slot(admission, n: int) -> list:
    return [await admission.slot(trio.current_time() + 5) for _ in range(n)]


@sections("daemon_sections", [{"devices": {"max_registering": 2, "register_timeout": 0.3,
                                           "register_queue_timeout": 60.0}}])
async def test_a_burst_larger_than_the_registration_slots_is_served_in_turn(daemon):
    devices = [await create_device(daemon, f"burst-{i}") for i in range(12)]
    admission = daemon.core.extras[ADMISSION]
    held = await _hold_every_slot(admission, 2)  # registrations under way: the burst must queue
    sockets = [await RawWebSocket.connect(daemon.port, "/ws") for _ in devices]
    try:
        for ws, device in zip(sockets, devices):
            await ws.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
        await wait_for(lambda: admission.waiting == len(devices))
        await trio.sleep_until(trio.current_time() + 0.5)  # every register_timeout has passed while queued
        assert admission.waiting == len(devices)
        for slot in held:
            slot.release()
        replies = [json.loads(await ws.receive(timeout=10)) for ws in sockets]
        assert [reply["type"] for reply in replies] == ["registered"] * len(devices)
        assert daemon.core.metrics.counters[("gatewayd_ws_refused_total", (("reason", "busy"),))] == 0
    finally:
        for ws in sockets:
            ws.close()


@sections("daemon_sections", [{"devices": {"max_registering": 1, "register_timeout": 0.3,
                                           "register_queue_timeout": 60.0}}])
async def test_a_first_message_that_is_not_a_registration_waits_no_longer_than_register_timeout(daemon):
    admission = daemon.core.extras[ADMISSION]
    held = await _hold_every_slot(admission, 1)
    ws = await RawWebSocket.connect(daemon.port, "/ws")
    try:
        await ws.send(json.dumps({"type": "telemetry", "data": {"t": 1}}))
        assert json.loads(await ws.receive(timeout=10))["code"] == "unavailable"
        assert await ws.wait_closed(timeout=10) == 1013
    finally:
        ws.close()
        for slot in held:
            slot.release()


@sections("daemon_sections", [{"devices": {"max_registering": 1, "register_timeout": 0.3,
                                           "register_queue_timeout": 60.0}, "presence": {"ws_timeout": 1.0}}])
async def test_time_spent_queued_for_a_slot_does_not_count_against_the_heartbeat(daemon):
    device = await create_device(daemon, "patient")
    admission = daemon.core.extras[ADMISSION]
    held = await _hold_every_slot(admission, 1)
    ws = await RawWebSocket.connect(daemon.port, "/ws")
    try:
        await ws.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
        await wait_for(lambda: admission.waiting == 1)
        await trio.sleep_until(trio.current_time() + 1.5)  # longer than presence.ws_timeout, queued
        held[0].release()
        assert json.loads(await ws.receive(timeout=10))["type"] == "registered"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.receive(timeout=10))["type"] == "pong"
    finally:
        ws.close()

"""Helpers for the device tests: devices through the REST API, registered WebSocket clients."""

from __future__ import annotations

import json

import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url


async def create_device(daemon, name: str = "sensor", **fields) -> dict:
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as client:
        response = await client.post("/api/devices", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        return response.json()


async def api(daemon, method: str, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as client:
        return await client.request(method, path, **kwargs)


async def receive_json(ws, timeout: float = 5.0) -> dict:
    with trio.fail_after(timeout):
        return json.loads(await ws.get_message())


async def send_json(ws, obj: dict) -> None:
    await ws.send_message(json.dumps(obj))


async def register(ws, device: dict, token: str | None = None) -> dict:
    await send_json(ws, {"type": "register", "device_id": device["id"], "token": token or device["token"]})
    reply = await receive_json(ws)
    assert reply["type"] == "registered", reply
    return reply


async def close_code(ws, timeout: float = 5.0) -> int:
    """Read until the server closes; return its close code."""
    with trio.fail_after(timeout):
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as exc:
            return exc.reason.code


def ws_url(daemon, path: str = "/ws") -> str:
    return daemon.ws_url + path


__all__ = ["ConnectionClosed", "open_websocket_url", "create_device", "api", "receive_json", "send_json",
           "register", "close_code", "ws_url"]


async def telemetry_items(core, device_id: str) -> list[dict]:
    """Every durable telemetry message of a device, from the history store, oldest first."""
    from gatewayd.history.queries import telemetry_messages

    await core.history.wait_applied()
    return core.history.read(telemetry_messages, device_id, None, None, 10_000)

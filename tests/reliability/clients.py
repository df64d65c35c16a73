"""Small real clients for the reliability suite: WebSocket devices, HTTP terminals, the REST API."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url, wrap_client_stream

__all__ = ["ConnectionClosed", "open_websocket_url", "create_device", "register", "receive", "send",
           "telemetry", "punches", "terminal_post", "close_code", "fleet_addresses", "websocket_from"]


def fleet_addresses(devices: int, per_address: int = 60) -> list[str]:
    """Loopback source addresses for a fleet: a real one reaches the daemon from many addresses, and
    the daemon limits what one address may do (admission has its own tests)."""
    return [f"127.0.0.{2 + i}" for i in range(max(16, -(-devices // per_address)))]


@asynccontextmanager
async def websocket_from(source: str, port: int, path: str = "/ws"):
    """A client WebSocket whose TCP connection comes from `source` (a loopback address)."""
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    with trio.fail_after(120):
        await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(120):
            ws = await wrap_client_stream(nursery, stream, "127.0.0.1", path)
        try:
            yield ws
        finally:
            with trio.move_on_after(5, shield=True):
                await ws.aclose()
            nursery.cancel_scope.cancel()


async def create_device(base_url: str, headers: dict, name: str = "sensor") -> dict:
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
        response = await client.post("/api/devices", json={"name": name})
        assert response.status_code == 201, response.text
        return response.json()


async def receive(ws, timeout: float = 5.0) -> dict:
    with trio.fail_after(timeout):
        return json.loads(await ws.get_message())


async def send(ws, obj: dict) -> None:
    await ws.send_message(json.dumps(obj))


async def register(ws, device: dict) -> dict:
    await send(ws, {"type": "register", "device_id": device["id"], "token": device["token"]})
    return await receive(ws)


async def telemetry(ws, msg_id: str, payload: dict | None = None, timeout: float = 5.0) -> dict:
    """Send telemetry with an id; return the server's answer to it (an ack or an error)."""
    await send(ws, {"type": "telemetry", "id": msg_id, "payload": payload or {"n": msg_id}})
    with trio.fail_after(timeout):
        while True:
            reply = await receive(ws, timeout)
            if reply.get("type") in ("ack", "error"):
                return reply


def punches(n: int, start: datetime, enrollid: int = 1) -> list[dict]:
    return [{"enrollid": enrollid, "time": (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S"),
             "mode": 1, "inout": i % 2, "event": 0} for i in range(n)]


async def terminal_post(client: httpx.AsyncClient, body: dict) -> httpx.Response:
    return await client.post("/api/device-http", content=json.dumps(body),
                             headers={"Content-Type": "application/json"})


async def close_code(ws, timeout: float = 5.0) -> int | None:
    with trio.fail_after(timeout):
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as exc:
            return exc.reason.code

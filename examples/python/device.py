"""A gatewayd WebSocket device in Python (trio + trio-websocket): the same behaviour as the
Node.js example next door.

    WS_URL=ws://192.168.1.10:3000/ws DEVICE_ID=... TOKEN=tok_... python device.py

It registers, prints what the server sends, runs commands (here: prints them and answers with a
command_result), sends telemetry every 30 s, and reconnects 5 s after the connection drops.
EXIT_AFTER_MESSAGES=N ends it after N received messages; TELEMETRY_INTERVAL changes the period.
"""

from __future__ import annotations

import json
import os
import random
import sys

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

WS_URL = os.environ.get("WS_URL", "ws://YOUR_SERVER_IP:3000/ws")
DEVICE_ID = os.environ.get("DEVICE_ID", "your-device-uuid")
TOKEN = os.environ.get("TOKEN", "tok_your_device_token")
EXIT_AFTER_MESSAGES = int(os.environ.get("EXIT_AFTER_MESSAGES", "0"))
TELEMETRY_INTERVAL = float(os.environ.get("TELEMETRY_INTERVAL", "30"))
RECONNECT_DELAY = 5.0


def handle_command(command: str, payload: dict) -> dict:
    print("Executing command:", command, payload, flush=True)
    return {"done": command}  # implement your device-specific logic here


async def send_telemetry(ws) -> None:
    while True:
        await trio.sleep(TELEMETRY_INTERVAL)
        data = {"temperature": 22.5 + random.random() * 2, "humidity": 45 + random.random() * 10}
        await ws.send_message(json.dumps({"type": "telemetry", "payload": data}))


async def session(received: list[int]) -> bool:
    """One connection; True when EXIT_AFTER_MESSAGES was reached."""
    print("Connecting to", WS_URL, flush=True)
    async with open_websocket_url(WS_URL, connect_timeout=10) as ws:
        print("Connected! Registering...", flush=True)
        await ws.send_message(json.dumps({"type": "register", "device_id": DEVICE_ID, "token": TOKEN}))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_telemetry, ws)
            while True:
                msg = json.loads(await ws.get_message())
                print("Received:", msg, flush=True)
                if msg.get("type") == "command":
                    result = handle_command(msg.get("command"), msg.get("payload") or {})
                    await ws.send_message(json.dumps({"type": "command_result", "id": msg.get("id"),
                                                      "ok": True, "result": result}))
                received[0] += 1
                if EXIT_AFTER_MESSAGES and received[0] >= EXIT_AFTER_MESSAGES:
                    nursery.cancel_scope.cancel()
                    return True


async def main() -> None:
    received = [0]
    while True:
        try:
            if await session(received):
                return
        except (ConnectionClosed, HandshakeError, OSError, trio.TooSlowError) as exc:
            print("WebSocket error:", exc, file=sys.stderr, flush=True)
        print(f"Disconnected. Reconnecting in {RECONNECT_DELAY:g}s...", flush=True)
        await trio.sleep(RECONNECT_DELAY)


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass

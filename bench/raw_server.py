"""The raw stack for comparison: hypercorn (trio worker) + quart-trio with a WebSocket route that only
receives frames, or (--bare) hypercorn with a bare ASGI application doing the same, or (--wsproto) no
server framework at all: wsproto on a trio socket stream, one task per connection (the floor of
what one connection costs on trio). It answers the first frame with {"type":"registered"}, a ping with a pong, and any
frame carrying an "id" with an ack, so the same load generators can drive it. Nothing is parsed
beyond finding those markers, nothing is stored.

    python bench/raw_server.py PORTFILE [--bare | --wsproto]
"""

from __future__ import annotations

import json
import socket
from functools import partial
import sys
from pathlib import Path

import trio
from hypercorn.trio import serve
from quart import websocket
from quart_trio import QuartTrio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gatewayd.config import Settings as defaults  # noqa: E402
from gatewayd.daemon import _hypercorn_config  # noqa: E402
from gatewayd.gctune import tune_for_daemon  # noqa: E402

app = QuartTrio("raw")
received = 0


@app.websocket("/ws")
async def raw_socket():
    global received
    await websocket.accept()
    await websocket.receive()
    await websocket.send('{"type":"registered"}')
    while True:
        frame = await websocket.receive()
        received += 1
        if '"ping"' in frame[:20]:
            await websocket.send('{"type":"pong"}')
        elif '"id"' in frame:
            await websocket.send('{"type":"ack"}')


async def bare_app(scope, receive, send) -> None:
    """The same answers as `raw_socket`, on raw ASGI messages."""
    global received
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await receive()
    await send({"type": "websocket.send", "text": '{"type":"registered"}'})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        frame = message.get("text") or ""
        received += 1
        if '"ping"' in frame[:20]:
            await send({"type": "websocket.send", "text": '{"type":"pong"}'})
        elif '"id"' in frame:
            await send({"type": "websocket.send", "text": '{"type":"ack"}'})


async def wsproto_connection(stream) -> None:
    """The same answers as `raw_socket`, with wsproto on the socket stream (handshake included)."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request, TextMessage

    global received
    ws = WSConnection(ConnectionType.SERVER)
    registered = False
    text = ""
    try:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            ws.receive_data(data)
            out = []
            for event in ws.events():
                if isinstance(event, Request):
                    out.append(ws.send(AcceptConnection()))
                elif isinstance(event, Ping):
                    out.append(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    out.append(ws.send(event.response()))
                elif isinstance(event, TextMessage):
                    text += event.data
                    if not event.message_finished:
                        continue
                    frame, text = text, ""
                    if not registered:
                        registered = True
                        reply = '{"type":"registered"}'
                    else:
                        received += 1
                        reply = ('{"type":"pong"}' if '"ping"' in frame[:20]
                                 else '{"type":"ack"}' if '"id"' in frame else None)
                    if reply:
                        out.append(ws.send(Message(data=reply)))
            if out:
                await stream.send_all(b"".join(out))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await stream.aclose()


async def main(portfile: str, bare: bool = False, plain_wsproto: bool = False, ping: bool = False) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    # the daemon's own hypercorn settings (frame limit, timeouts), so only the application differs;
    # --ping: hypercorn's own ping task per connection and read timeout, as the daemon once had
    config = _hypercorn_config(defaults())
    if ping:
        config.websocket_ping_interval, config.read_timeout = 20, 60
    config.bind = [f"127.0.0.1:{port}"]
    config.backlog = 1024
    async with trio.open_nursery() as nursery:
        if plain_wsproto:
            await nursery.start(partial(trio.serve_tcp, wsproto_connection, port, host="127.0.0.1", backlog=1024))
        else:
            await nursery.start(lambda task_status: serve(bare_app if bare else app, config, task_status=task_status))
        tune_for_daemon()  # the daemon's own garbage-collector settings too
        with open(portfile, "w") as handle:
            json.dump({"port": port}, handle)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], "--bare" in sys.argv[2:], "--wsproto" in sys.argv[2:], "--ping" in sys.argv[2:])

"""A bare WebSocket client on a plain trio socket (wsproto), for what trio-websocket cannot do:
bind a chosen local address (another "source"), stop reading on purpose, vanish without a FIN."""

from __future__ import annotations

import socket
import struct

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection,
                            RejectData, Request, TextMessage)


class Rejected(Exception):
    def __init__(self, status: int):
        super().__init__(f"handshake rejected with {status}")
        self.status = status


class RawWebSocket:
    def __init__(self, sock: trio.socket.SocketType):
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.close_code: int | None = None
        self._pending: list[str | bytes] = []
        self._text = ""
        self.pings = 0  # WebSocket pings the server sent (each answered)

    @classmethod
    async def connect(cls, port: int, path: str = "/ws", *, source: str = "127.0.0.1", host: str = "127.0.0.1",
                      headers: list[tuple[str, str]] | None = None, rcvbuf: int | None = None,
                      timeout: float = 5.0) -> "RawWebSocket":
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await sock.bind((source, 0))
        with trio.fail_after(timeout):
            await sock.connect((host, port))
            conn = cls(sock)
            await conn._send(conn.ws.send(Request(host=f"{host}:{port}", target=path,
                                                  extra_headers=[(k.encode(), v.encode()) for k, v in headers or []])))
            while True:
                data = await sock.recv(65536)
                if not data:
                    raise ConnectionError("closed during the handshake")
                conn.ws.receive_data(data)
                for event in conn.ws.events():
                    if isinstance(event, AcceptConnection):
                        return conn
                    if isinstance(event, RejectConnection):
                        sock.close()
                        raise Rejected(event.status_code)
                    if isinstance(event, RejectData):
                        continue

    async def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            sent = await self.sock.send(view)
            view = view[sent:]

    async def send(self, text: str) -> None:
        await self._send(self.ws.send(TextMessage(data=text)))

    async def receive(self, timeout: float = 5.0) -> str | bytes:
        """The next message; raises ConnectionError (close_code set) when the server closed."""
        with trio.fail_after(timeout):
            while not self._pending:
                await self._read()
            return self._pending.pop(0)

    async def wait_pings(self, count: int, timeout: float = 5.0) -> None:
        """Read (keeping the messages for `receive`) until the server has sent `count` pings."""
        with trio.fail_after(timeout):
            while self.pings < count:
                await self._read()

    async def _read(self) -> None:
        if self.close_code is not None:
            raise ConnectionError(f"closed with {self.close_code}")
        data = await self.sock.recv(65536)
        if not data:
            self.close_code = self.close_code or 1006
            raise ConnectionError("connection dropped")
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self._text += event.data
                if event.message_finished:
                    self._pending.append(self._text)
                    self._text = ""
            elif isinstance(event, BytesMessage):
                self._pending.append(bytes(event.data))
            elif isinstance(event, Ping):
                self.pings += 1
                await self._send(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_code = event.code

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Read (and drop) until the server closes; its close code (1006: dropped without one)."""
        try:
            while True:
                await self.receive(timeout)
        except ConnectionError:
            return self.close_code

    def vanish(self) -> None:
        """Disappear without a FIN: RST the connection (SO_LINGER 0), as a peer that lost power
        looks to the server once its retransmissions give up."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()

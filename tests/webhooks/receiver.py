"""A real HTTP/1.1 endpoint on 127.0.0.1 for webhook tests (trio + h11, keep-alive).

`answer(request)` decides each reply: an int status, or HANG (never answer: the client's timeout
fires). Every request is kept (headers lower-cased, body bytes); `wait_until(predicate)` waits,
with a timeout, until the requests received satisfy a condition (woken on each request)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Callable

import h11
import trio

HANG = "hang"


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    answered: int | str = 0

    def json(self):
        return json.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-gatewayd-signature", ""), expected)


@dataclass
class Receiver:
    answer: Callable[[Request], int | str] = lambda request: 200
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    connections: int = 0

    def __post_init__(self):
        self._lot = trio.lowlevel.ParkingLot()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read(stream, conn)
                if request is None:
                    return
                decision = self.answer(request)
                request.answered = decision
                self.requests.append(request)
                self._lot.unpark_all()
                if decision == HANG:
                    await trio.sleep_forever()
                body = b"{}"
                for event in (h11.Response(status_code=decision, headers=[("content-type", "application/json"),
                                                                          ("content-length", str(len(body)))]),
                              h11.Data(data=body), h11.EndOfMessage()):
                    await stream.send_all(conn.send(event))
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return
        finally:
            await stream.aclose()

    async def _read(self, stream, conn) -> Request | None:
        request, body = None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data and conn.their_state is h11.IDLE:
                    return None
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = Request(event.method.decode(), event.target.decode(),
                                  {k.decode().lower(): v.decode() for k, v in event.headers}, b"")
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                request.body = body
                return request
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def wait_until(self, predicate: Callable[[list[Request]], bool], timeout: float = 20.0) -> None:
        with trio.fail_after(timeout):
            while not predicate(self.requests):
                await self._lot.park()

    def delivered(self) -> list[dict]:
        """Event bodies of the requests that were answered 2xx, in the order they arrived."""
        out = []
        for request in self.requests:
            if isinstance(request.answered, int) and 200 <= request.answered < 300:
                body = request.json()
                out.extend(body if isinstance(body, list) else [body])
        return out


async def start_receiver(nursery: trio.Nursery, answer=None) -> Receiver:
    receiver = Receiver() if answer is None else Receiver(answer)
    return await nursery.start(receiver.serve)

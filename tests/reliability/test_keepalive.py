"""How quiet and dead peers are found without a ping task per connection: kernel keep-alive and
TCP_USER_TIMEOUT on every accepted socket, one shared task pinging the WebSockets whose peers may
stay silent (monitors, stations), each WebSocket's own heartbeat, and the HTTP limits (headers
within keep_alive_timeout, bodies within BODY_TIMEOUT)."""

from __future__ import annotations

import json
import os
import socket

import pytest
import trio

from gatewayd import connections, daemon as daemon_module
from tests.conftest import make_settings
from tests.reliability.clients import create_device
from tests.reliability.rawws import RawWebSocket

USER_TIMEOUT = 7.0
PING_INTERVAL = 0.05
KEEP_ALIVE = 0.5


@pytest.fixture
def daemon_sections():
    return {"server": {"tcp_user_timeout": USER_TIMEOUT}}


@pytest.fixture
def fast_pings(monkeypatch):
    monkeypatch.setattr(connections, "PING_INTERVAL", PING_INTERVAL)


@pytest.fixture
def short_keep_alive(monkeypatch):
    original = daemon_module._hypercorn_config

    def scaled(settings):
        cfg = original(settings)
        cfg.keep_alive_timeout = KEEP_ALIVE
        return cfg

    monkeypatch.setattr(daemon_module, "_hypercorn_config", scaled)


def accepted_socket_options(port: int, peer: tuple) -> dict[str, int]:
    """The options of the socket this process accepted on `port` from `peer` (found through
    /proc/self/fd, as the daemon's own stop does)."""
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if sock.type != socket.SOCK_STREAM or sock.family != socket.AF_INET \
                    or sock.getsockname()[1] != port or sock.getpeername() != peer:
                continue
            return {"SO_KEEPALIVE": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    **{option: sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, option))
                       for option in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT")}}
        except OSError:
            continue
        finally:
            sock.close()
    raise AssertionError(f"no socket accepted on {port} from {peer}")


async def test_accepted_sockets_probe_idle_peers_and_time_out_unacknowledged_data(daemon):
    client = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with client:
        await client.connect(("127.0.0.1", daemon.port))
        peer = client.getsockname()
        options = await trio.to_thread.run_sync(accepted_socket_options, daemon.port, peer)
    assert options["SO_KEEPALIVE"] == 1
    # An idle peer is probed after 30 s, every 10 s; TCP_USER_TIMEOUT ends it once probes (or
    # data) stay unacknowledged that long.
    assert (options["TCP_KEEPIDLE"], options["TCP_KEEPINTVL"], options["TCP_KEEPCNT"]) == (30, 10, 3)
    assert options["TCP_USER_TIMEOUT"] == int(USER_TIMEOUT * 1000)


def test_the_web_server_keeps_no_ping_task_or_read_timeout_per_connection(tmp_path):
    cfg = daemon_module._hypercorn_config(make_settings(tmp_path))
    assert cfg.websocket_ping_interval is None
    assert cfg.read_timeout is None
    assert cfg.keep_alive_timeout == 75


async def test_monitors_are_pinged_and_devices_are_not(fast_pings, daemon):
    device = await create_device(daemon.base_url, daemon.auth, "quiet")
    dev = await RawWebSocket.connect(daemon.port, "/ws")
    monitor = await RawWebSocket.connect(daemon.port, "/monitor/communications",
                                         headers=[("Authorization", f"Bearer {daemon.api_key}")])
    try:
        await dev.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
        assert json.loads(await dev.receive())["type"] == "registered"
        await monitor.wait_pings(3)  # a monitor only reads: the shared task pings it
        await dev.send(json.dumps({"type": "ping"}))
        assert json.loads(await dev.receive())["type"] == "pong"
        # The device's own heartbeat (presence.ws_timeout) decides; the rounds that pinged the
        # monitor passed it by.
        assert dev.pings == 0
        assert monitor.close_code is None
    finally:
        dev.close()
        monitor.close()


async def test_a_stalled_ping_holds_up_no_other_connection(fast_pings):
    class Stalled:
        pings = 0

        async def ping(self):
            self.pings += 1
            await trio.sleep_forever()  # a peer whose window is full

        def request_close(self, code, reason):
            pass

        async def closed(self):
            pass

    class Quick(Stalled):
        async def ping(self):
            self.pings += 1

    live = connections.ConnectionSet()
    stalled, quick = Stalled(), Quick()
    live.add(stalled, ping=True)
    live.add(quick, ping=True)
    live.add(Quick())  # not asked for pings
    async with trio.open_nursery() as nursery:
        await nursery.start(live.ping_periodically)
        with trio.fail_after(5):
            while quick.pings < 3:
                await trio.sleep(PING_INTERVAL)
        nursery.cancel_scope.cancel()
    assert stalled.pings == 1  # its first ping is still being written: not stacked up


async def test_headers_that_do_not_complete_are_cut_after_keep_alive_timeout(short_keep_alive, daemon):
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        await sock.connect(("127.0.0.1", daemon.port))
        await sock.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        with trio.fail_after(10):
            assert await sock.recv(1024) == b""  # closed without an answer


async def test_a_body_that_stalls_is_answered_408_and_the_connection_closed(daemon):
    daemon.core.extras["web_app"].config["BODY_TIMEOUT"] = 0.5
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        await sock.connect(("127.0.0.1", daemon.port))
        await sock.send(b"POST /api/device-http HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{\"cmd\":")
        answer = b""
        with trio.fail_after(10):
            while chunk := await sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]

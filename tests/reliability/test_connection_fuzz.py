"""Malformed handshakes and WebSocket frames thrown at a live gatewayd process: whatever arrives,
the process keeps running and /healthz answers."""

from __future__ import annotations

import os
import socket
import struct

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import DaemonProcess

PATHS = [b"/ws", b"/", b"/healthz", b"/monitor/communications", b"/api/device-http", b"/login", b"/x" * 40]
METHODS = [b"GET", b"POST", b"PRI", b"OPTIONS", b"get", b"G\x00T"]
HEADERS = [
    b"Host: 127.0.0.1", b"Connection: Upgrade", b"Connection: keep-alive, Upgrade", b"Upgrade: websocket",
    b"Upgrade: h2c", b"Upgrade: WebSocket", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    b"Sec-WebSocket-Key: !!", b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8",
    b"Sec-WebSocket-Protocol: gatewayd.json", b"Sec-WebSocket-Protocol: ,,,",
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7",
    b"Content-Length: 5", b"Content-Length: -1", b"Transfer-Encoding: chunked", b"Expect: 100-continue",
    b"HTTP2-Settings: AAMAAABkAAQAAP__", b"Origin: http://evil.example", b"X: \xff\xfe",
]


def frame(fin: bool, rsv: int, opcode: int, masked: bool, payload: bytes, length_delta: int) -> bytes:
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    length = max(0, len(payload) + length_delta)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if masked:
        key = os.urandom(4)
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


frames = st.builds(
    frame, st.booleans(), st.integers(0, 7), st.sampled_from([0, 1, 2, 3, 8, 9, 10, 11, 15]), st.booleans(),
    st.one_of(st.binary(max_size=200), st.sampled_from([b"\xff\xfe", struct.pack("!H", 1005), b"\x03\xe8\xff",
                                                        b'{"type":"register"}', b'{"cmd":"reg","sn":"X"}'])),
    st.sampled_from([0, 0, 0, 1, -1, 70000]))

handshakes = st.builds(
    lambda method, path, version, headers, trailing: method + b" " + path + b" " + version + b"\r\n"
    + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + trailing,
    st.sampled_from(METHODS), st.sampled_from(PATHS), st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9"]),
    st.lists(st.sampled_from(HEADERS), max_size=10), st.binary(max_size=20))

VALID = [b"Host: 127.0.0.1", b"Connection: Upgrade", b"Upgrade: websocket",
         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Version: 13"]
# Almost valid handshakes: a valid one, a header dropped or one added, bytes glued behind it.
near_valid = st.builds(
    lambda path, drop, extra, trailing: b"GET " + path + b" HTTP/1.1\r\n"
    + b"".join(h + b"\r\n" for i, h in enumerate(VALID) if i != drop) + b"".join(h + b"\r\n" for h in extra)
    + b"\r\n" + trailing,
    st.sampled_from(PATHS), st.integers(-1, 8), st.lists(st.sampled_from(HEADERS), max_size=2), st.binary(max_size=8))

exchanges = st.tuples(handshakes | near_valid, st.lists(frames, max_size=4), st.booleans())


def send_one(port: int, handshake: bytes, sent_frames: list[bytes], wait_for_answer: bool) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.settimeout(0.3)
        try:
            sock.sendall(handshake)
            if wait_for_answer:
                try:
                    sock.recv(4096)
                except TimeoutError:
                    pass
            sock.sendall(b"".join(sent_frames))
            while sock.recv(65536):
                pass
        except OSError:  # reset, timed out, refused mid-way: all fine here
            pass


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    process = DaemonProcess(tmp_path_factory.mktemp("fuzz-state")).start()
    yield process
    process.stop()


@settings(max_examples=int(os.environ.get("GATEWAYD_FUZZ_EXAMPLES", "80")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(exchanges)
def test_the_process_survives_malformed_handshakes_and_frames(live, exchange):
    handshake, sent_frames, wait_for_answer = exchange
    send_one(live.port, handshake, sent_frames, wait_for_answer)
    assert live.proc.poll() is None, live.output()
    assert httpx.get(f"http://127.0.0.1:{live.port}/healthz", timeout=5).status_code == 200

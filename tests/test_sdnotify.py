import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import uuid

import pytest

from gatewayd import sdnotify
from gatewayd.sdnotify import Notifier, listen_fds, watchdog_interval


@pytest.fixture
def receiver(tmp_path):
    path = tmp_path / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def test_ready_stopping_watchdog_status(receiver, monkeypatch):
    path, sock = receiver
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = Notifier.from_environ()
    assert notifier.enabled
    assert notifier.ready()
    assert sock.recv(4096) == b"READY=1\n"
    assert notifier.status("serving on :3000\n12 devices")
    assert sock.recv(4096) == b"STATUS=serving on :3000 12 devices\n"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1\n"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1\n"
    assert notifier.send(ready=1, status="up")
    assert sock.recv(4096) == b"READY=1\nSTATUS=up\n"
    notifier.close()


def test_abstract_socket():
    name = f"gatewayd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1\n"
        notifier.close()
    finally:
        sock.close()


def test_no_op_without_notify_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier.from_environ()
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


def test_unreachable_socket_never_raises_and_logs_once(tmp_path, caplog):
    notifier = Notifier(str(tmp_path / "missing.sock"))
    with caplog.at_level(logging.DEBUG, logger="gatewayd.sdnotify"):
        assert notifier.ready() is False
        assert notifier.watchdog() is False
    assert len([r for r in caplog.records if "sd_notify" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "nope"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval(env, expected):
    assert watchdog_interval(env) == expected


def test_watchdog_interval_reads_os_environ(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 2.0


def test_listen_fds_wrong_pid_is_ignored_and_unset():
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}
    assert listen_fds(env) == []
    assert env == {}


def test_listen_fds_absent_or_bad():
    assert listen_fds({}) == []
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "many"}
    assert listen_fds(env) == []
    assert env == {}


def test_listen_fds_with_real_sockets(tmp_path):
    """A child gets a TCP listener on fd 3 and a unix datagram socket on fd 4, as systemd does."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram_path = str(tmp_path / "d.sock")
    dgram.bind(dgram_path)
    tcp_address = tcp.getsockname()
    child = textwrap.dedent(
        """
        import json, os, sys
        os.dup2(int(sys.argv[1]), 3)
        os.dup2(int(sys.argv[2]), 4)
        os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="web:udp")
        from gatewayd.sdnotify import listen_fds
        socks = listen_fds()
        print(json.dumps({
            "socks": [[s.fileno(), int(s.family), int(s.type), s.getsockname()] for s in socks],
            "left": sorted(k for k in os.environ if k.startswith("LISTEN_")),
            "inheritable": [os.get_inheritable(s.fileno()) for s in socks],
        }))
        """
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", child, str(tcp.fileno()), str(dgram.fileno())],
            pass_fds=(tcp.fileno(), dgram.fileno()),
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    finally:
        tcp.close()
        dgram.close()
    result = json.loads(out)
    assert result["socks"] == [
        [3, int(socket.AF_INET), int(socket.SOCK_STREAM), list(tcp_address)],
        [4, int(socket.AF_UNIX), int(socket.SOCK_DGRAM), dgram_path],
    ]
    assert result["left"] == []
    assert result["inheritable"] == [False, False]


def test_listen_fds_start_is_three():
    assert sdnotify.LISTEN_FDS_START == 3

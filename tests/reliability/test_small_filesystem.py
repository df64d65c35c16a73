"""A real small filesystem (a size-limited tmpfs) that fills up under the daemon. Needs root to
mount; skipped with a message otherwise."""

from __future__ import annotations

import errno
import os
import subprocess

import httpx
import pytest

from gatewayd.journal.reader import JournalReader
from tests.conftest import Daemon, wait_for
from tests.reliability.clients import create_device, open_websocket_url, register, telemetry


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory) -> object:
    """Take every free byte of the filesystem; returns the filler's path."""
    path = directory / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 64, 1):  # big chunks, then the last scraps
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return path


async def test_a_disk_that_fills_up_stops_acks_and_they_resume_when_space_returns(small_fs, nursery):
    daemon = Daemon(nursery, small_fs / "state", {})
    await daemon.start()
    device = await create_device(daemon.base_url, daemon.auth)
    acked: list[str] = []
    async with open_websocket_url(daemon.ws_url + "/ws") as ws, httpx.AsyncClient(base_url=daemon.base_url) as http:
        assert (await register(ws, device))["type"] == "registered"
        filler = fill(small_fs)
        payload = {"blob": "x" * 1500}
        refused = None
        for n in range(400):
            reply = await telemetry(ws, f"m{n}", payload, timeout=15)
            if reply["type"] == "ack":
                acked.append(f"m{n}")
                continue
            refused = reply
            break
        assert refused is not None and refused["code"] == "unavailable", "the disk never filled up"
        assert (await http.get("/healthz")).status_code == 503
        again = await telemetry(ws, "while-full", timeout=15)
        assert again["type"] == "error"

        filler.unlink()
        await wait_for(lambda: daemon.core.writer.failed is None, timeout=10)
        assert await telemetry(ws, "after") == {"type": "ack", "id": "after"}
        acked.append("after")
        assert (await http.get("/healthz")).status_code == 200
    await daemon.restart()
    await daemon.stop()
    reader = JournalReader(small_fs / "state" / "journal")
    ids = [r.data.get("msg_id") for r in reader.records() if r.type == "device.telemetry"]
    assert all(ids.count(i) == 1 for i in acked), "an acknowledged message is missing or doubled"
    assert reader.verify().ok


async def test_the_daemon_starts_on_a_full_disk_with_a_torn_tail_and_recovers(small_fs, nursery):
    state = small_fs / "state"
    daemon = Daemon(nursery, state, {})
    await daemon.start()
    await daemon.stop()
    segment = sorted((state / "journal").glob("segment-*.jsonl"))[-1]
    with open(segment, "ab") as handle:
        handle.write(b'{"seq":999,"ts":"2026-')  # a write cut by the power
    filler = fill(small_fs)
    await daemon.start()  # would crash-loop if the torn tail's copy or run.json were required
    async with httpx.AsyncClient(base_url=daemon.base_url) as http:
        assert (await http.get("/healthz")).status_code in (200, 503)
        filler.unlink()
        device = await create_device(daemon.base_url, daemon.auth)
    async with open_websocket_url(daemon.ws_url + "/ws") as ws:
        assert (await register(ws, device))["type"] == "registered"
        assert await telemetry(ws, "ok") == {"type": "ack", "id": "ok"}
    await daemon.stop()
    assert JournalReader(state / "journal").verify().ok

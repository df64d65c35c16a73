"""A full or failing disk under a running daemon: every client gets a retryable error instead of an
acknowledgement, the daemon stays up, and it recovers by itself once writes succeed again."""

from __future__ import annotations

import errno
import json
from datetime import datetime

import httpx
import pytest

from gatewayd.journal import writer as writer_module
from gatewayd.journal.reader import JournalReader
from tests.conftest import Daemon, wait_for
from tests.reliability.clients import (create_device, open_websocket_url, punches, register, telemetry,
                                       terminal_post)
from tests.reliability.faults import FAULTS, FaultyFileOps


@pytest.fixture
async def faulty_daemon(monkeypatch, nursery, tmp_path):
    monkeypatch.setattr(writer_module, "FileOps", FaultyFileOps)
    FAULTS.clear()
    d = Daemon(nursery, tmp_path / "state", {"terminals": {"auto_accept": True}})
    await d.start()
    yield d
    FAULTS.clear()
    await d.stop()


def journal_records(daemon, record_type: str) -> list[dict]:
    return [r.data for r in JournalReader(daemon.state_dir / "journal").records() if r.type == record_type]


@pytest.mark.parametrize("error,calls", [(errno.ENOSPC, ("write",)), (errno.EIO, ("sync",))],
                         ids=["ENOSPC-on-write", "EIO-on-fsync"])
async def test_clients_get_retryable_errors_while_the_disk_fails_and_acks_resume_by_themselves(
        faulty_daemon, error, calls):
    daemon = faulty_daemon
    device = await create_device(daemon.base_url, daemon.auth)
    other = await create_device(daemon.base_url, daemon.auth, "late")
    day = datetime(2026, 6, 12, 9, 0)
    async with open_websocket_url(daemon.ws_url + "/ws") as ws, \
            httpx.AsyncClient(base_url=daemon.base_url, timeout=15) as client:
        assert (await register(ws, device))["type"] == "registered"
        assert await telemetry(ws, "before") == {"type": "ack", "id": "before"}
        reg = {"cmd": "reg", "sn": "DISK1", "cpusn": "C1", "devinfo": {"modelname": "m"}}
        assert (await terminal_post(client, reg)).json()["result"] is True
        first = {"cmd": "sendlog", "sn": "DISK1", "count": 3, "logindex": 1, "record": punches(3, day)}
        assert (await terminal_post(client, first)).json()["result"] is True

        FAULTS.fail(error, calls=calls)
        refused = await telemetry(ws, "during", timeout=15)
        assert refused["type"] == "error" and refused["code"] == "unavailable", refused
        batch = {"cmd": "sendlog", "sn": "DISK1", "count": 3, "logindex": 2, "record": punches(3, day, 2)}
        reply = await terminal_post(client, batch)
        assert reply.json()["result"] is False and reply.status_code in (200, 503), reply.text
        created = await client.post("/api/devices", json={"name": "x"}, headers=daemon.auth)
        assert created.status_code == 503 and "Retry-After" in created.headers, created.text
        health = await client.get("/healthz")
        assert health.status_code == 503 and health.json()["journal_writable"] is False
        tx = await client.post("/api/tx", headers=daemon.auth, content=json.dumps(
            {"function": "TX", "DevEui": device["id"], "Payload": "0102", "Port": 1, "Reference": "r1"}))
        assert tx.status_code >= 400 and tx.json()["Result"] != "Success", tx.text
        bad_key = await client.get("/api/devices", headers={"Authorization": "Bearer gwk_nope_nope"})
        assert bad_key.status_code in (401, 503), bad_key.text
        async with open_websocket_url(daemon.ws_url + "/ws") as late:
            answer = await register(late, other)
            assert answer["type"] == "error", answer
        assert daemon.core.hub.writer.failed is not None

        FAULTS.clear()
        await wait_for(lambda: daemon.core.writer.failed is None, timeout=10)
        assert (await client.get("/healthz")).status_code == 200
        assert await telemetry(ws, "after") == {"type": "ack", "id": "after"}
        assert (await terminal_post(client, batch)).json()["result"] is True
        assert (await client.post("/api/devices", json={"name": "y"}, headers=daemon.auth)).status_code == 201

    await daemon.restart()
    ids = [r.get("msg_id") for r in journal_records(daemon, "device.telemetry")]
    assert ids.count("before") == 1 and ids.count("after") == 1
    punches_stored = [(p.source, p.enrollid, p.time) for p in daemon.core.service("attendance").select(sn="DISK1")]
    assert len(punches_stored) == len(set(punches_stored)) == 6
    assert JournalReader(daemon.state_dir / "journal").verify().ok

"""Wrong logins: counted before the password is hashed, few hashes at once, limited per address
and per user name; what is journaled about them reveals neither the typed name nor a key."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import trio

from gatewayd.journal.reader import JournalReader
from tests.conftest import wait_for

from .helpers import PASSWORD, client, csrf_of, set_password

sections = pytest.mark.parametrize


async def form_token(http: httpx.AsyncClient) -> str:
    return csrf_of((await http.get("/login")).text)


async def attempt(http: httpx.AsyncClient, token: str, user: str = "admin", password: str = "wrong") -> int:
    response = await http.post("/login", data={"username": user, "password": password, "csrf_token": token})
    return response.status_code


def journal_bytes(daemon) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(daemon.core.journal_dir.iterdir()) if p.is_file())


def checks(daemon) -> float:
    return daemon.core.metrics.counters[("gatewayd_password_checks_total", ())]


@sections("daemon_sections", [{"security": {"login_failures_per_minute": 5}}])
async def test_concurrent_wrong_logins_from_one_address_are_counted_before_hashing(daemon):
    await set_password(daemon)
    statuses: list[int] = []
    async with client(daemon) as http:
        token = await form_token(http)

        async def one() -> None:
            statuses.append(await attempt(http, token))

        async with trio.open_nursery() as nursery:
            for _ in range(60):
                nursery.start_soon(one)
    assert statuses.count(401) <= 5 and statuses.count(429) >= 55
    assert checks(daemon) <= 5


@sections("daemon_sections", [{"security": {"login_failures_per_minute": 100,
                                            "login_failures_per_minute_per_user": 3}}])
async def test_wrong_logins_for_one_user_name_are_limited_across_addresses(daemon):
    await set_password(daemon)
    statuses = []
    for n in range(2, 7):  # a new address each time
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{n}")
        async with client(daemon, transport=transport) as http:
            statuses.append(await attempt(http, await form_token(http)))
    assert statuses == [401, 401, 401, 429, 429]
    async with client(daemon, transport=httpx.AsyncHTTPTransport(local_address="127.0.0.9")) as http:
        assert await attempt(http, await form_token(http), user="operator") == 401  # another name is not blocked


@sections("daemon_sections", [{"security": {"login_failures_per_minute": 1000,
                                            "max_concurrent_password_checks": 1}}])
async def test_password_checks_run_one_at_a_time_when_so_configured(daemon, monkeypatch):
    await set_password(daemon)
    access = daemon.core.access
    real = access.check_password
    running, most = [0], [0]
    lock = threading.Lock()

    def watched(password: str) -> bool:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.02)  # a worker thread standing for a slow hash, so overlaps would show
            return real(password)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(access, "check_password", watched)
    async with client(daemon) as http:
        token = await form_token(http)
        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(attempt, http, token)
    assert checks(daemon) == 8 and most[0] == 1


async def test_a_failed_login_journals_a_salted_hash_of_the_user_name_never_the_text(daemon):
    await set_password(daemon)
    typed = "CorrectHorse-typed-into-the-name-field"
    async with client(daemon) as http:
        assert await attempt(http, await form_token(http), user=typed) == 401
    core = daemon.core
    await wait_for(lambda: core.writer.durable_seq == core.hub.next_seq - 1)
    failed = [r.data for r in JournalReader(core.journal_dir).records() if r.type == "auth.failed"]
    assert len(failed) == 1 and failed[0]["kind"] == "login" and len(failed[0]["user_hash"]) == 16
    assert typed.encode() not in journal_bytes(daemon) and b"CorrectHorse" not in journal_bytes(daemon)
    assert failed[0]["user_hash"] == core.access.subject_hash("user", typed)  # same name, same hash


async def test_no_part_of_a_wrong_bearer_value_is_journaled(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url) as http:
        response = await http.get("/api/devices", headers={"Authorization": "Bearer gwk_ab12cd_Sup3rSecretValue"})
        assert response.status_code == 401
        response = await http.get("/api/devices", headers={"Authorization": "Bearer PASTEDPASSWORD123"})
        assert response.status_code == 401
    core = daemon.core
    await wait_for(lambda: core.writer.durable_seq == core.hub.next_seq - 1)
    journal = journal_bytes(daemon)
    for part in (b"ab12cd", b"Sup3r", b"PASTEDPASS"):
        assert part not in journal
    assert PASSWORD.encode() not in journal

"""The monitoring handshake needs an API key (or a dashboard session); refusals leak nothing and
are journaled as auth.failed actions with the source address, never the secret."""

from __future__ import annotations

import json

import httpx
import pytest
from trio_websocket import ConnectionRejected, open_websocket_url

from gatewayd import ops

from .helpers import monitor_url, next_frame, open_monitor

WRONG = "gwk_0badc0de_ThisIsTheSecretPartOfAWrongKey123"


async def refused(url: str, headers=None) -> ConnectionRejected:
    with pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(url, extra_headers=headers or []):
            pass
    return info.value


@pytest.mark.parametrize("stream", ["communications", "actions"])
async def test_no_key_is_refused_with_401_and_nothing_else(daemon, stream):
    rejection = await refused(monitor_url(daemon, stream))
    assert rejection.status_code == 401
    assert json.loads(rejection.body) == {
        "code": "unauthorized", "message": "an API key is required (?key=... or Authorization: Bearer ...)"}


async def test_wrong_or_revoked_keys_are_refused_and_leak_nothing(daemon):
    in_query = await refused(monitor_url(daemon, key=WRONG))
    in_header = await refused(monitor_url(daemon), [(b"Authorization", f"Bearer {WRONG}".encode())])
    for rejection in (in_query, in_header):
        assert rejection.status_code == 401
        assert b"Secret" not in rejection.body and b"0badc0de" not in rejection.body
    revoked = await ops.call(daemon.core, "apikey.create", {"name": "old"})
    await ops.call(daemon.core, "apikey.revoke", {"key_id": revoked["key_id"]})
    assert (await refused(monitor_url(daemon, key=revoked["key"]))).status_code == 401


async def test_a_key_in_the_query_or_the_header_is_accepted(daemon):
    async with open_websocket_url(monitor_url(daemon, key=daemon.api_key)):
        pass
    async with open_monitor(daemon, "actions"):
        pass


async def test_repeated_failures_block_the_source_even_with_a_good_key(daemon):
    for _ in range(daemon.core.settings.security.login_failures_per_minute):
        assert (await refused(monitor_url(daemon, key=WRONG))).status_code == 401
    blocked = await refused(monitor_url(daemon, key=daemon.api_key))
    assert blocked.status_code == 429


async def test_refusals_are_actions_with_the_source_and_no_secret(daemon):
    async with open_monitor(daemon, "actions", types="auth_failed") as actions:
        await refused(monitor_url(daemon, key=WRONG))
        async with httpx.AsyncClient(base_url=daemon.base_url) as client:
            response = await client.get("/api/devices", headers={"Authorization": "Bearer tok_NotAnApiKeyAtAll"})
            assert response.status_code == 401
        first, second = await next_frame(actions), await next_frame(actions)
    assert first["ActionType"] == second["ActionType"] == "auth_failed"
    assert first["Actor"] == "127.0.0.1" and first["Details"] == {"kind": "apikey", "source": "127.0.0.1"}
    assert first["Target"] == second["Target"] == ""  # nothing of a bearer value is recorded
    for frame in (first, second):
        text = json.dumps(frame)
        assert "Secret" not in text and "NotAnApiKey" not in text and "tok_" not in text


async def test_a_dashboard_session_from_this_origin_opens_a_stream(daemon):
    from tests.dashboard.helpers import logged_in

    async with logged_in(daemon) as (http, _):
        cookie = (b"Cookie", f"gatewayd_session={http.cookies['gatewayd_session']}".encode())
        ours, theirs = f"http://127.0.0.1:{daemon.port}", "http://evil.example"
        assert (await refused(monitor_url(daemon), [cookie, (b"Origin", theirs.encode())])).status_code == 401
        async with open_websocket_url(monitor_url(daemon, "actions"), extra_headers=[cookie, (b"Origin", ours.encode())]):
            pass

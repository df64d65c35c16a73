"""A logged-out session stays refused after a restart; the journal holds no session id."""

from __future__ import annotations

from .helpers import client, logged_in


async def test_a_logged_out_cookie_is_refused_after_a_restart(daemon):
    async with logged_in(daemon) as (http, token):
        stolen = dict(http.cookies)
        assert (await http.post("/logout", data={"csrf_token": token})).status_code == 303
    await daemon.restart()
    async with client(daemon, cookies=stolen) as replay:
        assert (await replay.get("/devices")).status_code == 303
        assert (await replay.get("/api/devices")).status_code == 401
    sid_text = stolen["gatewayd_session"].split(".")[0]
    journal = b"".join(p.read_bytes() for p in daemon.core.journal_dir.iterdir() if p.is_file())
    assert b"auth.logout" in journal and sid_text.encode() not in journal


async def test_other_sessions_of_the_same_user_are_not_affected(daemon):
    async with logged_in(daemon) as (first, token):
        async with logged_in(daemon, set_it=False) as (second, _):
            assert (await first.post("/logout", data={"csrf_token": token})).status_code == 303
            assert (await second.get("/devices")).status_code == 200

"""Dashboard login, sessions and CSRF over plain HTTP against a real gatewayd."""

import os
import stat

import pytest
import trio


from .helpers import PASSWORD, client, csrf_of, logged_in, login, set_password

PAGES = ["/devices", "/devices/new", "/events", "/terminals", "/attendance", "/attendance.csv", "/gateways",
         "/realtime", "/settings", "/devices/00000000-0000-4000-8000-000000000000",
         "/terminals/SN1", "/settings/apikeys/abc/revoke", "/devices/00000000-0000-4000-8000-000000000000/delete"]
FORMS = ["/logout", "/devices/new", "/devices/x/commands", "/devices/x/token", "/devices/x/delete",
         "/devices/x/enable", "/devices/x/disable", "/terminals/add", "/terminals/SN1/approve",
         "/terminals/SN1/reject", "/terminals/SN1/command", "/settings/apikeys", "/settings/apikeys/abc/revoke",
         "/settings/password"]


def _cookie_header(response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(name + "="))


async def test_every_page_redirects_to_login_without_a_session(daemon):
    async with client(daemon) as http:
        for path in PAGES:
            response = await http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=/"), path
        root = await http.get("/")
        assert (root.status_code, root.headers["location"]) == (303, "/login")
        assert (await http.get("/login")).status_code == 200
        assert (await http.get("/static/app.css")).status_code == 200
        assert (await http.get("/static/nothing.js")).status_code == 404


async def test_every_form_handler_refuses_without_a_session(daemon):
    async with client(daemon) as http:
        for path in FORMS:
            response = await http.post(path, data={"csrf_token": "x", "name": "n"})
            assert response.status_code == 401, path
            assert "Log in" in response.text and "Traceback" not in response.text


async def test_every_form_handler_refuses_without_the_csrf_token(daemon):
    async with logged_in(daemon) as (http, token):
        for path in FORMS:
            for data in ({"name": "n"}, {"name": "n", "csrf_token": token[:-2] + "xx"}):
                response = await http.post(path, data=data)
                assert response.status_code == 403, path
                assert "security token" in response.text
            foreign = await http.post(path, data={"csrf_token": token}, headers={"Origin": "http://evil.example"})
            assert foreign.status_code == 403, path
        assert daemon.core.state.devices.devices == {}
        assert (await http.get("/devices")).status_code == 200  # still logged in


async def test_login_sets_a_strict_httponly_cookie_and_journals_it(daemon):
    await set_password(daemon)
    with daemon.core.hub.subscribe(100, lambda r: r.type == "auth.login") as logins:
        async with client(daemon) as http:
            response = await login(http)
            assert response.status_code == 303 and response.headers["location"] == "/devices"
            cookie = _cookie_header(response, "gatewayd_session")
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
            assert PASSWORD not in cookie
            assert (await http.get("/devices")).status_code == 200
            assert (await http.get("/")).headers["location"] == "/devices"
        with trio.fail_after(5):
            record = await logins.receive.receive()
    assert record.data == {"user": "admin", "source": "127.0.0.1"}


@pytest.mark.parametrize("daemon_sections", [{"security": {"login_failures_per_minute": 3}}])
async def test_wrong_password_is_refused_recorded_and_rate_limited(daemon):
    await set_password(daemon)
    with daemon.core.hub.subscribe(100, lambda r: r.type == "auth.failed") as failures:
        async with client(daemon) as http:
            for password in ("wrong", "", "also wrong"):
                response = await login(http, password)
                assert response.status_code == 401
                assert "Wrong user name or password" in response.text
            wrong_user = await login(http, PASSWORD, user="root")
            assert wrong_user.status_code == 429  # the source is blocked now, whatever it sends
            right = await login(http, PASSWORD)
            assert right.status_code == 429 and "Too many failed logins" in right.text
            assert (await http.get("/devices")).status_code == 303
        with trio.fail_after(5):
            seen = [await failures.receive.receive() for _ in range(3)]
    assert {r.data["kind"] for r in seen} == {"login"}
    assert all(PASSWORD not in str(r.data) and "wrong" not in str(r.data) for r in seen)


async def test_login_form_needs_its_csrf_token(daemon):
    await set_password(daemon)
    async with client(daemon) as http:
        response = await http.post("/login", data={"username": "admin", "password": PASSWORD})
        assert response.status_code == 403 and "expired" in response.text
        retry = await http.post("/login", data={"username": "admin", "password": PASSWORD,
                                                "csrf_token": csrf_of(response.text)})
        assert retry.status_code == 303


async def test_next_parameter_stays_on_this_server(daemon):
    await set_password(daemon)
    async with client(daemon) as http:
        for target, expected in (("/settings", "/settings"), ("//evil.example/x", "/"),
                                 ("https://evil.example", "/")):
            page = await http.get("/login", params={"next": target})
            response = await http.post("/login", data={"username": "admin", "password": PASSWORD,
                                                       "csrf_token": csrf_of(page.text), "next": target})
            assert response.headers["location"] == expected
            http.cookies.clear()


async def test_logout_revokes_the_session(daemon):
    async with logged_in(daemon) as (http, token):
        stolen = dict(http.cookies)
        response = await http.post("/logout", data={"csrf_token": token})
        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert "gatewayd_session=" in _cookie_header(response, "gatewayd_session")
    async with client(daemon, cookies=stolen) as replay:
        assert (await replay.get("/devices")).status_code == 303


async def test_tampered_or_foreign_cookies_are_refused(daemon):
    async with logged_in(daemon) as (http, _):
        value = http.cookies["gatewayd_session"]
    payload, mac = value.split(".")
    for forged in (payload + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B"), "x" * 5000, "a.b", ""):
        async with client(daemon, cookies={"gatewayd_session": forged}) as other:
            assert (await other.get("/devices")).status_code == 303
            assert (await other.get("/api/devices")).status_code == 401


async def test_session_survives_a_restart_and_the_key_file_is_private(daemon):
    async with logged_in(daemon) as (http, _):
        cookies = dict(http.cookies)
    key_file = daemon.state_dir / "session.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_bytes()
    await daemon.restart()
    assert key_file.read_bytes() == key
    async with client(daemon, cookies=cookies) as again:
        assert (await again.get("/devices")).status_code == 200


async def test_session_works_for_the_rest_api_with_csrf_for_changes(daemon):
    async with logged_in(daemon) as (http, token):
        assert (await http.get("/api/devices")).status_code == 200
        refused = await http.post("/api/devices", json={"name": "x"})
        assert refused.status_code == 403 and refused.json()["code"] == "csrf"
        wrong = await http.post("/api/devices", json={"name": "x"}, headers={"X-CSRF-Token": "nope"})
        assert wrong.status_code == 403
        cross = await http.post("/api/devices", json={"name": "x"},
                                headers={"X-CSRF-Token": token, "Origin": "http://evil.example"})
        assert cross.status_code == 403
        assert daemon.core.state.devices.devices == {}
        created = await http.post("/api/devices", json={"name": "x"}, headers={"X-CSRF-Token": token})
        assert created.status_code == 201
    async with client(daemon, headers=daemon.auth) as machine:  # API keys need no CSRF token
        assert (await machine.post("/api/devices", json={"name": "y"})).status_code == 201


async def test_password_change_ends_other_sessions_but_keeps_this_one(daemon):
    async with logged_in(daemon) as (first, token), logged_in(daemon, set_it=False) as (second, _):
        wrong = await first.post("/settings/password", data={"csrf_token": token, "current": "bad",
                                                             "new": "new password 1", "confirm": "new password 1"})
        assert wrong.status_code == 303
        assert "current password is wrong" in (await first.get("/settings")).text
        mismatch = await first.post("/settings/password", data={"csrf_token": token, "current": PASSWORD,
                                                                "new": "new password 1", "confirm": "other"})
        assert mismatch.status_code == 303 and "differ" in (await first.get("/settings")).text
        changed = await first.post("/settings/password", data={"csrf_token": token, "current": PASSWORD,
                                                               "new": "new password 1", "confirm": "new password 1"})
        assert changed.status_code == 303
        assert "Password changed" in (await first.get("/settings")).text
        assert (await second.get("/devices")).status_code == 303
    async with client(daemon) as fresh:
        assert (await login(fresh, PASSWORD)).status_code == 401
        assert (await login(fresh, "new password 1")).status_code == 303

"""After login, `next` leads only to a path on this site."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from gatewayd.web.dashboard import safe_next

from .helpers import PASSWORD, client, csrf_of, set_password

HOSTILE = ["/\t/evil.example", "/\n/evil.example", "/\r\nSet-Cookie: x=1", "//evil.example", "///evil.example",
           "/\\evil.example", "https://evil.example/", "http:/evil.example", "javascript:alert(1)",
           "evil.example", "/\u2028/evil.example", "/\x00", "/\u00a0/evil.example", "/\u200b/evil.example", ""]


@pytest.mark.parametrize("target", HOSTILE)
def test_anything_but_a_same_site_path_goes_to_the_root(target):
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/devices", "/terminals/AB12?tab=punches", "/a/b%2F%2Fc"])
def test_same_site_paths_are_kept(target):
    assert safe_next(target) == target


@pytest.mark.parametrize("raw", ["/%09/evil.example", "%2F%2Fevil.example", "/%0d%0aSet-Cookie:%20x=1",
                                 "https:%2F%2Fevil.example"])
async def test_login_with_a_hostile_next_redirects_to_the_root(daemon, raw):
    await set_password(daemon)
    async with client(daemon) as http:
        form = await http.get(f"/login?next={raw}")
        assert form.status_code == 200
        response = await http.post("/login", data={"username": "admin", "password": PASSWORD,
                                                   "csrf_token": csrf_of(form.text), "next": unquote(raw)})
        assert response.status_code == 303 and response.headers["location"] == "/"
        again = await http.get(f"/login?next={raw}")  # logged in: straight to next
        assert again.status_code == 303 and again.headers["location"] == "/"

"""The dashboard's form handlers over plain HTTP: each one changes what it should, through the
same operations as the API, and answers bad input with a readable message."""

import json
import re

import httpx

from tests.conftest import wait_for
from tests.devices.helpers import open_websocket_url, receive_json, register, ws_url

from .helpers import logged_in

SN = "ZX0006012345"


def _token(html: str) -> str:
    return re.search(r'id="device-token"[^>]*>([^<]+)<', html).group(1)


def _device_id(html: str) -> str:
    return re.search(r'id="device-id"[^>]*>([^<]+)<', html).group(1)


async def _created(http, response) -> httpx.Response:
    """The page a create or rotate form redirects to (POST-redirect-GET)."""
    assert response.status_code == 303, response.text
    assert re.fullmatch(r"/devices/[0-9a-f-]+/connect", response.headers["location"])
    return await http.get(response.headers["location"])


async def _create(http, csrf, name="boiler", tags="floor1, temp") -> tuple[str, str]:
    page = await _created(http, await http.post("/devices/new", data={"csrf_token": csrf, "name": name, "tags": tags}))
    return _device_id(page.text), _token(page.text)


async def test_add_device_shows_the_token_once_with_snippets(daemon):
    async with logged_in(daemon) as (http, csrf):
        posted = await http.post("/devices/new", data={"csrf_token": csrf, "name": "boiler", "tags": "floor1, temp"})
        response = await _created(http, posted)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        device_id, token = _device_id(response.text), _token(response.text)
        device = daemon.core.state.devices.get(device_id)
        assert device["name"] == "boiler" and device["tags"] == ["floor1", "temp"]
        page = response.text
        assert f"ws://127.0.0.1:{daemon.port}/ws" in page
        for marker in ('require(&#34;ws&#34;)', "import websockets", "WebSocketsClient"):
            assert marker in page
        assert page.count(token) == 4  # the token line and the three examples
        assert "&#34;" + token + "&#34;" in page  # as a quoted string literal in the examples
        for path in ("/devices", f"/devices/{device_id}", "/events", posted.headers["location"]):
            assert token not in (await http.get(path)).text
        assert "shown already" in (await http.get(posted.headers["location"])).text  # once: a reload shows no token
        async with open_websocket_url(ws_url(daemon)) as ws:  # the token shown is the working one
            await register(ws, {"id": device_id}, token)


async def test_add_device_refuses_a_bad_name_readably(daemon):
    async with logged_in(daemon) as (http, csrf):
        response = await http.post("/devices/new", data={"csrf_token": csrf, "name": "  "})
        assert response.status_code == 303 and response.headers["location"] == "/devices/new"
        page = (await http.get("/devices/new")).text
        assert re.search(r'id="name-error"[^>]*>a device needs a name', page)
        bad_tag = await http.post("/devices/new", data={"csrf_token": csrf, "name": "ok", "tags": "bad tag!"})
        page = (await http.get(bad_tag.headers["location"])).text
        assert re.search(r'id="tags-error"[^>]*>tag &#39;bad tag!&#39;', page)
        assert 'value="ok"' in page and 'value="bad tag!"' in page  # the input is kept
        assert 'value="ok"' not in (await http.get("/devices/new")).text  # once
    assert daemon.core.state.devices.devices == {}


async def test_device_list_filters_and_detail_page(daemon):
    async with logged_in(daemon) as (http, csrf):
        first, _ = await _create(http, csrf, "boiler", "floor1")
        await _create(http, csrf, "pump", "floor2")
        listing = (await http.get("/devices")).text
        assert "boiler" in listing and "pump" in listing
        filtered = (await http.get("/devices", params={"q": "boil"})).text
        assert "boiler" in filtered and ">pump<" not in filtered
        assert ">pump<" in (await http.get("/devices", params={"tag": "floor2"})).text
        assert ">boiler<" not in (await http.get("/devices", params={"status": "online"})).text
        detail = await http.get(f"/devices/{first}")
        assert detail.status_code == 200 and "Telemetry charts" in detail.text and "No telemetry yet" in detail.text
        missing = await http.get("/devices/00000000-0000-4000-8000-000000000000")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
        assert "no device with id" in missing.text


async def test_send_command_from_the_form(daemon):
    async with logged_in(daemon) as (http, csrf):
        device_id, token = await _create(http, csrf)
        back = f"/devices/{device_id}"
        bad_json = await http.post(f"{back}/commands", data={"csrf_token": csrf, "command": "reboot", "payload": "{x"})
        assert bad_json.status_code == 303 and bad_json.headers["location"].startswith(back)
        page = (await http.get(back)).text
        assert re.search(r'id="payload-error"[^>]*>the payload is not valid JSON', page)
        assert 'value="reboot"' in page and ">{x</textarea>" in page  # what was typed is kept
        not_object = await http.post(f"{back}/commands", data={"csrf_token": csrf, "command": "reboot", "payload": "[1]"})
        assert not_object.status_code == 303
        assert "must be a JSON object" in (await http.get(back)).text
        assert daemon.core.state.commands.for_device(device_id) == []
        async with open_websocket_url(ws_url(daemon)) as ws:
            await register(ws, {"id": device_id}, token)
            sent = await http.post(f"{back}/commands", data={"csrf_token": csrf, "command": "reboot",
                                                             "payload": '{"delay": 5}'})
            assert sent.status_code == 303
            command = await receive_json(ws)
            assert (command["type"], command["command"], command["payload"]) == ("command", "reboot", {"delay": 5})
            await ws.send_message(json.dumps({"type": "command_result", "id": command["id"], "ok": True}))
            await wait_for(lambda: daemon.core.state.commands.get(command["id"])["state"] == "acknowledged")
        page = (await http.get(sent.headers["location"])).text
        assert "Command reboot queued" in page and command["id"] in page and "acknowledged" in page


async def test_rotate_disable_enable_delete(daemon):
    async with logged_in(daemon) as (http, csrf):
        device_id, old_token = await _create(http, csrf)
        base = f"/devices/{device_id}"
        confirm = await http.get(f"{base}/token")
        assert confirm.status_code == 200 and "Rotate token" in confirm.text
        rotated = await _created(http, await http.post(f"{base}/token", data={"csrf_token": csrf}))
        new_token = _token(rotated.text)
        assert new_token != old_token and "old token no longer works" in rotated.text
        assert (await http.post(f"{base}/disable", data={"csrf_token": csrf})).status_code == 303
        assert not daemon.core.state.devices.get(device_id)["enabled"]
        assert "Enable" in (await http.get(base)).text
        assert (await http.post(f"{base}/enable", data={"csrf_token": csrf})).status_code == 303
        assert daemon.core.state.devices.get(device_id)["enabled"]
        question = await http.get(f"{base}/delete")
        assert "Delete boiler?" in question.text and daemon.core.state.devices.get(device_id) is not None
        deleted = await http.post(f"{base}/delete", data={"csrf_token": csrf})
        assert deleted.status_code == 303 and deleted.headers["location"] == "/devices"
        assert daemon.core.state.devices.get(device_id) is None
        assert "Device boiler deleted." in (await http.get("/devices")).text
        again = await http.post(f"{base}/delete", data={"csrf_token": csrf})
        assert again.status_code == 303 and "no device" in (await http.get(again.headers["location"])).text


async def _terminal_calls(daemon, body: dict) -> dict:
    async with httpx.AsyncClient(base_url=daemon.base_url) as terminal:
        return (await terminal.post("/api/device-http", json=body)).json()


async def test_terminal_approval_commands_and_attendance(daemon):
    async with logged_in(daemon) as (http, csrf):
        reply = await _terminal_calls(daemon, {"cmd": "reg", "sn": SN, "devinfo": {"modelname": "AI518"}})
        assert reply["result"] is False
        page = (await http.get("/terminals")).text
        assert SN in page and "Approve" in page and "Waiting for approval" in page
        approved = await http.post(f"/terminals/{SN}/approve", data={"csrf_token": csrf})
        assert approved.status_code == 303
        assert daemon.core.state.terminals.get(SN)["status"] == "accepted"
        assert f"Terminal {SN} approved." in (await http.get("/terminals")).text
        punch = {"enrollid": 12, "time": "2026-06-12 09:15:30", "mode": 8, "inout": 0, "event": 0}
        stored = await _terminal_calls(daemon, {"cmd": "sendlog", "sn": SN, "count": 1, "logindex": 0,
                                                "record": [punch]})
        assert stored["result"] is True
        detail = (await http.get(f"/terminals/{SN}")).text
        # In HTTP mode it can receive no command: none is offered, none is queued.
        assert "2026-06-12 09:15:30" in detail and "Pull backlog" not in detail and "carries no commands" in detail
        refused = await http.post(f"/terminals/{SN}/command", data={"csrf_token": csrf, "action": "door"})
        assert refused.status_code == 303 and "unknown action" in (await http.get(f"/terminals/{SN}")).text
        other = "WS0001"  # added by an operator: cmd/ret commands wait for its WebSocket
        await http.post("/terminals/add", data={"csrf_token": csrf, "sn": other})
        assert "Pull backlog" in (await http.get(f"/terminals/{other}")).text
        for action in ("backlog", "time", "door", "users"):
            response = await http.post(f"/terminals/{other}/command", data={"csrf_token": csrf, "action": action})
            assert response.status_code == 303
        queued = [c["command"] for c in daemon.core.state.terminals.commands.values()]
        assert sorted(queued) == ["getnewlog", "getuserlist", "opendoor", "settime"]
        refused = await http.post(f"/terminals/{other}/command", data={"csrf_token": csrf, "action": "reboot"})
        assert refused.status_code == 303 and "unknown action" in (await http.get(f"/terminals/{other}")).text
        table = (await http.get("/attendance", params={"from": "2026-06-12", "to": "2026-06-12", "sn": SN})).text
        assert "09:15:30" in table and ">12<" in table
        assert "No punches" in (await http.get("/attendance", params={"enrollid": "99"})).text
        bad = await http.get("/attendance", params={"from": "yesterday"})
        assert bad.status_code == 422 and "neither YYYY-MM-DD" in bad.text
        csv = await http.get("/attendance.csv", params={"sn": SN})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in csv.headers["content-disposition"]
        lines = csv.text.strip().splitlines()
        assert lines[0].startswith("sn,enrollid,time") and len(lines) == 2 and SN in lines[1]


async def test_terminal_add_and_reject(daemon):
    async with logged_in(daemon) as (http, csrf):
        added = await http.post("/terminals/add", data={"csrf_token": csrf, "sn": "AB123", "name": "Front door"})
        assert added.status_code == 303 and daemon.core.state.terminals.get("AB123")["name"] == "Front door"
        duplicate = await http.post("/terminals/add", data={"csrf_token": csrf, "sn": "AB123", "name": "Typed"})
        again = (await http.get("/terminals")).text
        assert duplicate.status_code == 303 and "exists already" in again
        assert 'value="AB123"' in again and 'value="Typed"' in again  # the form keeps what was typed
        await _terminal_calls(daemon, {"cmd": "reg", "sn": "CD456"})
        rejected = await http.post("/terminals/CD456/reject", data={"csrf_token": csrf})
        assert rejected.status_code == 303
        assert daemon.core.state.terminals.get("CD456")["status"] == "rejected"
        assert "Approve after all" in (await http.get("/terminals")).text


async def test_api_keys_created_once_and_revoked(daemon):
    async with logged_in(daemon) as (http, csrf):
        posted = await http.post("/settings/apikeys", data={"csrf_token": csrf, "name": "reports"})
        assert posted.status_code == 303
        created = await http.get(posted.headers["location"])
        assert created.status_code == 200
        key = re.search(r'id="api-key"[^>]*>([^<]+)<', created.text).group(1)
        again = await http.get(posted.headers["location"])  # shown once: a reload shows it no more
        assert again.status_code == 410 and key not in again.text
        async with httpx.AsyncClient(base_url=daemon.base_url, headers={"Authorization": f"Bearer {key}"}) as api:
            assert (await api.get("/api/devices")).status_code == 200
        settings = (await http.get("/settings")).text
        assert "reports" in settings and key not in settings
        key_id = key.split("_")[1]
        assert "Revoke the API key reports?" in (await http.get(f"/settings/apikeys/{key_id}/revoke")).text
        revoked = await http.post(f"/settings/apikeys/{key_id}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        async with httpx.AsyncClient(base_url=daemon.base_url, headers={"Authorization": f"Bearer {key}"}) as api:
            assert (await api.get("/api/devices")).status_code == 401
        empty = await http.post("/settings/apikeys", data={"csrf_token": csrf, "name": ""})
        assert empty.status_code == 303 and "needs a name" in (await http.get("/settings")).text


async def test_pages_render_with_security_headers(daemon):
    async with logged_in(daemon) as (http, _):
        for path in ("/devices", "/events", "/terminals", "/attendance", "/gateways", "/realtime", "/settings"):
            response = await http.get(path)
            assert response.status_code == 200, path
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert response.headers["x-frame-options"] == "DENY"
            assert "<script>" not in response.text  # no inline scripts: the CSP forbids them


async def test_an_unwritable_journal_gives_a_retryable_page(daemon):
    async with logged_in(daemon) as (http, csrf):
        daemon.core.writer.failed = "simulated: disk full"
        try:
            response = await http.post("/devices/new", data={"csrf_token": csrf, "name": "boiler"})
        finally:
            daemon.core.writer.failed = None
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert "Nothing was changed" in response.text and "disk full" not in response.text
        assert daemon.core.state.devices.devices == {}
        assert (await http.post("/devices/new", data={"csrf_token": csrf, "name": "boiler"})).status_code == 303


async def test_push_terminal_page_shows_its_protocol_and_commands(daemon):
    async with logged_in(daemon) as (http, csrf):
        async with httpx.AsyncClient(base_url=daemon.base_url) as terminal:
            assert (await terminal.get("/iclock/cdata", params={"SN": "PUSHDASH", "options": "all"})).status_code == 200
        assert "PUSHDASH" in (await http.get("/terminals")).text
        await http.post("/terminals/PUSHDASH/approve", data={"csrf_token": csrf})
        detail = (await http.get("/terminals/PUSHDASH")).text
        assert "<dt>Protocol</dt><dd>push</dd>" in detail and "Refresh device info" in detail
        assert "<dt>Users reported</dt><dd>0</dd>" in detail and "none yet" in detail
        assert "Sync time" not in detail
        response = await http.post("/terminals/PUSHDASH/command", data={"csrf_token": csrf, "action": "info"})
        assert response.status_code == 303
        assert [c["command"] for c in daemon.core.state.terminals.commands.values()] == ["info"]

"""REST API: credentials, the registry operations, precise JSON errors."""

import json

import httpx
import trio

from tests.conftest import ROOT, run_cli

from .helpers import api, create_device


async def test_credentials_are_required(daemon):
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        for method, path in (("GET", "/api/devices"), ("POST", "/api/devices"), ("GET", "/api/events"),
                             ("POST", "/api/devices/x/token")):
            response = await client.request(method, path)
            assert response.status_code == 401 and response.json()["code"] == "unauthorized"
        bad = await client.get("/api/devices", headers={"Authorization": "Bearer gwk_nope_nope"})
        assert bad.status_code == 401


async def test_create_list_show_update_delete(daemon):
    device = await create_device(daemon, "boiler", tags=["floor1", "heat"])
    assert device["token"].startswith("tok_") and len(device["token"]) >= 4 + 43
    assert "token_hash" not in device and device["status"] == "offline" and device["kind"] == "ws"
    # the token is stored hashed only
    assert device["token"] not in json.dumps(daemon.core.state.snapshot())

    listed = (await api(daemon, "GET", "/api/devices")).json()["items"]
    assert [d["id"] for d in listed] == [device["id"]] and "token" not in listed[0]
    assert (await api(daemon, "GET", "/api/devices", params={"tag": "nope"})).json()["items"] == []

    shown = (await api(daemon, "GET", f"/api/devices/{device['id']}")).json()
    assert shown["name"] == "boiler" and shown["tags"] == ["floor1", "heat"] and "token" not in shown

    patched = await api(daemon, "PATCH", f"/api/devices/{device['id']}", json={"name": "boiler 2", "enabled": False})
    assert patched.status_code == 200 and patched.json()["name"] == "boiler 2"
    assert patched.json()["status"] == "disabled"

    assert (await api(daemon, "DELETE", f"/api/devices/{device['id']}")).status_code == 200
    gone = await api(daemon, "GET", f"/api/devices/{device['id']}")
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"


async def test_every_change_is_a_journal_record_with_an_actor(daemon):
    with daemon.core.hub.subscribe(100, lambda r: r.type.startswith("device.")) as sub:
        device = await create_device(daemon)
        await api(daemon, "PATCH", f"/api/devices/{device['id']}", json={"tags": ["a"]})
        await api(daemon, "POST", f"/api/devices/{device['id']}/disable")
        await api(daemon, "POST", f"/api/devices/{device['id']}/enable")
        await api(daemon, "POST", f"/api/devices/{device['id']}/token")
        await api(daemon, "DELETE", f"/api/devices/{device['id']}")
        records = []
        with trio.fail_after(5):
            while len(records) < 6:
                records.append(await sub.receive.receive())
    assert [r.type for r in records] == ["device.created", "device.updated", "device.disabled", "device.enabled",
                                         "device.token_rotated", "device.deleted"]
    assert {r.data["actor"] for r in records} == {"apikey:tests"}
    assert all("tok_" not in json.dumps(r.data) for r in records)


async def test_errors_are_precise(daemon):
    cases = [
        ("POST", "/api/devices", {"content": b"{"}, 400, "bad_json"),
        ("POST", "/api/devices", {"json": [1]}, 422, "invalid"),
        ("POST", "/api/devices", {"json": {}}, 422, "invalid"),
        ("POST", "/api/devices", {"json": {"name": "x" * 65}}, 422, "invalid"),
        ("POST", "/api/devices", {"json": {"name": "a", "tags": ["bad tag"]}}, 422, "invalid"),
        ("POST", "/api/devices", {"json": {"name": "a", "kind": "zigbee"}}, 422, "invalid"),
        ("POST", "/api/devices", {"json": {"name": "a", "colour": "red"}}, 422, "invalid"),
        ("GET", "/api/devices/nope", {}, 404, "not_found"),
        ("PATCH", "/api/devices/nope", {"json": {"name": "x"}}, 404, "not_found"),
        ("GET", "/api/devices/nope/telemetry", {}, 404, "not_found"),
        ("GET", "/api/events", {"params": {"since": "x"}}, 422, "invalid"),
        ("GET", "/api/events", {"params": {"limit": "-1"}}, 422, "invalid"),
    ]
    for method, path, kwargs, status, code in cases:
        response = await api(daemon, method, path, **kwargs)
        assert (response.status_code, response.json()["code"]) == (status, code), (path, kwargs, response.text)
        assert response.json()["message"]
    device = await create_device(daemon)
    bad_range = await api(daemon, "GET", f"/api/devices/{device['id']}/telemetry", params={"since": "yesterday"})
    assert bad_range.status_code == 422


async def test_lorawan_needs_the_lorawan_service(daemon):
    response = await api(daemon, "POST", "/api/devices", json={"name": "node", "lorawan": {"dev_eui": "00" * 8}})
    if "lorawan" in daemon.core.services:
        assert response.status_code in (201, 422)
    else:
        assert response.status_code == 422 and response.json()["code"] == "unsupported"


async def test_cli_device_lifecycle_offline(tmp_path):
    state = str(tmp_path / "state")

    def cli(*args):
        return run_cli(*args, "--state-dir", state)

    added = await trio.to_thread.run_sync(cli, "device", "add", "pump", "--tags", "a,b", "--json")
    assert added.returncode == 0, added.stderr
    device = json.loads(added.stdout)
    assert device["token"].startswith("tok_") and device["tags"] == ["a", "b"]
    human = await trio.to_thread.run_sync(cli, "device", "add", "fan")
    assert "token: tok_" in human.stdout and "shown only now" in human.stdout
    listed = await trio.to_thread.run_sync(cli, "device", "list")
    assert "pump" in listed.stdout and "fan" in listed.stdout and "tok_" not in listed.stdout
    rotated = await trio.to_thread.run_sync(cli, "device", "rotate-token", device["id"], "--json")
    assert json.loads(rotated.stdout)["token"] != device["token"]
    deleted = await trio.to_thread.run_sync(cli, "device", "delete", device["id"])
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    missing = await trio.to_thread.run_sync(cli, "device", "show", device["id"])
    assert missing.returncode == 1 and "not_found" in missing.stderr
    lorawan_without_switch = await trio.to_thread.run_sync(cli, "device", "add", "x", "--dev-eui", "00" * 8)
    assert lorawan_without_switch.returncode == 2


async def test_openapi_describes_every_device_route(daemon):
    from gatewayd.web.app import create_app

    spec = json.loads((ROOT / "docs" / "openapi.json").read_text())
    app = create_app(daemon.core)
    routes = {}
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<", "{").replace(">", "}")
        if rule.endpoint.startswith("rest_devices."):
            if "{any(enable, disable):action}" in path:
                for action in ("enable", "disable"):
                    routes.setdefault(path.replace("{any(enable, disable):action}", action), set()).update(rule.methods)
            else:
                routes.setdefault(path, set()).update(rule.methods)
    assert set(routes) == set(spec["paths"]), set(routes) ^ set(spec["paths"])
    for path, methods in routes.items():
        documented = {m.upper() for m in spec["paths"][path] if m != "parameters"}
        assert documented == methods - {"HEAD", "OPTIONS"}, path

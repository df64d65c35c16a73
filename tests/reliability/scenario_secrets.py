"""Every kind of secret through every surface, under the secret scanner (tests/reliability/secret_scan.py).

Not collected by default: test_secret_scan.py runs it in a subprocess with the scanner on, once
clean and once with a planted leak (GATEWAYD_PLANT_LEAK=1) to prove the scanner can fail.
"""

from __future__ import annotations

import logging
import os
import re
import secrets

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from gatewayd import ops
from tests.lorawan.helpers import UdpGateway, free_udp_port
from tests.lorasim import SimDevice
from tests.reliability.clients import receive, register, send, telemetry
from tests.reliability.secret_scan import SCANNER


@pytest.fixture
def daemon_sections():
    return {"server": {"udp_port": free_udp_port(), "udp_host": "127.0.0.1"},
            "security": {"login_failures_per_minute": 50}}


async def drain(ws, frames: list) -> None:
    try:
        while True:
            frames.append(await ws.get_message())
    except ConnectionClosed:
        return


def hexkey() -> str:
    return os.urandom(16).hex()


async def test_secrets_stay_out_of_logs_journal_streams_and_error_bodies(daemon, nursery):
    core = daemon.core
    auth = [(b"Authorization", f"Bearer {daemon.api_key}".encode())]
    frames: list[str] = []
    async with open_websocket_url(daemon.ws_url + "/monitor/communications?since=0", extra_headers=auth) as comms, \
            open_websocket_url(daemon.ws_url + "/monitor/actions?since=0", extra_headers=auth) as actions, \
            httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth, timeout=15) as api:
        nursery.start_soon(drain, comms, frames)
        nursery.start_soon(drain, actions, frames)

        # -- device tokens: create, use, get wrong, rotate ------------------------------------------
        device = (await api.post("/api/devices", json={"name": "scan-me"})).json()
        async with open_websocket_url(daemon.ws_url + "/ws") as ws:
            assert (await register(ws, device))["type"] == "registered"
            assert (await telemetry(ws, "t1"))["type"] == "ack"
        for _ in range(3):
            async with open_websocket_url(daemon.ws_url + "/ws") as ws:
                wrong = "tok_" + secrets.token_urlsafe(32)
                await send(ws, {"type": "register", "device_id": device["id"], "token": wrong})
                assert (await receive(ws))["code"] == "auth_failed"
        rotated = (await api.post(f"/api/devices/{device['id']}/token")).json()
        async with open_websocket_url(daemon.ws_url + "/ws") as ws:
            assert (await register(ws, device))["type"] == "error"  # the old token
        async with open_websocket_url(daemon.ws_url + "/ws") as ws:
            assert (await register(ws, {**device, "token": rotated["token"]}))["type"] == "registered"
        xml_token = "tok_" + secrets.token_urlsafe(32)
        SCANNER.learn("token", xml_token)
        async with open_websocket_url(daemon.ws_url + "/ws") as ws:
            await ws.send_message(f'<register device_id="{device["id"]}" token="{xml_token}"/>')
            assert "auth_failed" in await ws.get_message()

        # -- API keys: create, use, revoke, use revoked, malformed ----------------------------------
        key = await ops.call(core, "apikey.create", {"name": "scan"})
        assert (await api.get("/api/devices", headers={"Authorization": f"Bearer {key['key']}"})).status_code == 200
        await ops.call(core, "apikey.revoke", {"key_id": key["key_id"]})
        refused = await api.get("/api/devices", headers={"Authorization": f"Bearer {key['key']}"})
        assert refused.status_code == 401
        refused = await api.get(f"/api/devices?key={key['key']}", headers={"Authorization": ""})
        assert refused.status_code == 401
        try:
            async with open_websocket_url(daemon.ws_url + f"/monitor/actions?key={key['key']}"):
                pass
        except Exception:  # noqa: BLE001 - refused, as it must be
            pass

        # -- the admin password: set, fail, log in, out ---------------------------------------------
        password = secrets.token_urlsafe(16)
        await ops.call(core, "admin.set_password", {"password": password})
        async with httpx.AsyncClient(base_url=daemon.base_url, timeout=15) as browser:
            page = await browser.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            for attempt in range(2):
                wrong = secrets.token_urlsafe(16)
                SCANNER.learn("password", wrong)
                bad = await browser.post("/login", data={"username": "admin", "password": wrong, "csrf_token": csrf})
                assert bad.status_code == 401
            SCANNER.learn("password", password)
            good = await browser.post("/login", data={"username": "admin", "password": password, "csrf_token": csrf})
            assert good.status_code in (302, 303)
            assert (await browser.get("/devices")).status_code == 200
            settings_page = await browser.get("/settings")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', settings_page.text).group(1)
            await browser.post("/logout", data={"csrf_token": csrf})

        # -- LoRaWAN keys: OTAA join (session keys derived), ABP, a malformed key --------------------
        app_key, nwk, app = hexkey(), hexkey(), hexkey()
        otaa = {"dev_eui": "70b3d57ed00000a1", "app_eui": "70b3d57ed0000000", "app_key": app_key}
        created = await api.post("/api/devices", json={"name": "otaa", "lorawan": otaa})
        assert created.status_code == 201, created.text
        abp = {"dev_eui": "0004a30b001c05a1", "dev_addr": "26011bdb", "nwk_s_key": nwk, "app_s_key": app}
        assert (await api.post("/api/devices", json={"name": "abp", "lorawan": abp})).status_code == 201
        malformed = hexkey()[:-1]
        SCANNER.learn("LoRaWAN key", malformed)
        bad = await api.post("/api/devices", json={"name": "bad", "lorawan": {**abp, "dev_eui": "0004a30b001c05a2",
                                                                             "nwk_s_key": malformed}})
        assert bad.status_code >= 400
        sim = SimDevice.otaa(otaa["dev_eui"], otaa["app_eui"], app_key)
        async with UdpGateway(daemon.udp_port) as gw:
            await gw.pull()
            await gw.push(sim.join_request(0x4242))
            sim.decode_downlink((await gw.pull_resp()).txpk.data)
            SCANNER.learn("LoRaWAN session key", sim.nwk_s_key)
            SCANNER.learn("LoRaWAN session key", sim.app_s_key)
            await gw.push(sim.uplink(5, b"hello"))
            abp_sim = SimDevice.abp("26011bdb", nwk, app)
            await gw.push(abp_sim.uplink(9, b"abp"))
        keys = await api.get(f"/api/lorawan/devices/{otaa['dev_eui']}/keys")
        assert keys.status_code == 200  # shown on purpose to an operator who asks

        if os.environ.get("GATEWAYD_PLANT_LEAK"):
            logging.getLogger("gatewayd.planted").info("planted: token %s", rotated["token"])

        with trio.fail_after(5):
            while not any('"comm_rx"' in f and "70b3d57ed00000a1" in f for f in frames):
                await trio.sleep(0.02)
    assert any("auth" in f for f in frames), "the actions stream saw no failed logins"
    assert len(SCANNER.known) >= 10
    await daemon.restart()  # replay, snapshot-free restart: scanned again at teardown
    await ops.call(daemon.core, "journal.compact", {})

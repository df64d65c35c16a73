"""LoRaWAN keys: sealed at rest, validated without echoing them, shown only to operators (audited)."""

from __future__ import annotations

import logging
import os

import httpx
import pytest

from gatewayd import ops
from gatewayd.secretbox import SecretBox, SecretBoxError

from .helpers import (ABP_APP, ABP_EUI, ABP_NWK, OTAA_EUI, OTAA_KEY, add_abp, add_otaa, journal_bytes, records_of)
from tests.conftest import wait_for


def test_secretbox_round_trip_context_and_key_file(tmp_path):
    box = SecretBox(tmp_path / "secret.key")
    token = box.seal(b"\x01" * 16, "lorawan/a/app_key")
    assert token.startswith("sb1.") and "01" * 16 not in token
    assert box.open(token, "lorawan/a/app_key") == b"\x01" * 16
    assert box.seal(b"\x01" * 16, "x") != box.seal(b"\x01" * 16, "x")  # random nonce
    with pytest.raises(SecretBoxError):
        box.open(token, "lorawan/b/app_key")  # a token moved to another device does not open
    with pytest.raises(SecretBoxError):
        box.open(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), "lorawan/a/app_key")
    with pytest.raises(SecretBoxError):
        SecretBox(tmp_path / "other.key").open(token, "lorawan/a/app_key")
    assert os.stat(tmp_path / "secret.key").st_mode & 0o777 == 0o600
    assert SecretBox(tmp_path / "secret.key").open(token, "lorawan/a/app_key") == b"\x01" * 16
    (tmp_path / "short.key").write_bytes(b"abc")
    with pytest.raises(SecretBoxError, match="32 bytes"):
        SecretBox(tmp_path / "short.key").seal(b"x")


@pytest.mark.parametrize("args, message", [
    ({}, "needs --dev-eui"),
    ({"dev_eui": "123"}, "DevEUI must be 16 hexadecimal digits"),
    ({"dev_eui": ABP_EUI}, "missing: --dev-addr, --nwk-s-key, --app-s-key"),
    ({"dev_eui": ABP_EUI, "dev_addr": "26011bda", "nwk_s_key": ABP_NWK}, "missing: --app-s-key"),
    ({"dev_eui": ABP_EUI, "dev_addr": "zz", "nwk_s_key": ABP_NWK, "app_s_key": ABP_APP}, "DevAddr must be 8"),
    ({"dev_eui": ABP_EUI, "app_key": OTAA_KEY, "nwk_s_key": ABP_NWK}, "not both"),
    ({"dev_eui": ABP_EUI, "app_key": OTAA_KEY, "relax_fcnt": "yes"}, "relax_fcnt must be true or false"),
    ({"dev_eui": ABP_EUI, "app_key": OTAA_KEY, "colour": "red"}, "unknown field(s) colour"),
])
async def test_bad_provisioning_is_refused_precisely(daemon, args, message):
    with pytest.raises(ops.OpError) as info:
        await ops.call(daemon.core, "device.create", {"name": "x", "lorawan": args})
    assert message in info.value.message


async def test_a_malformed_key_is_never_echoed(daemon, caplog):
    secretish = ABP_NWK[:-1]  # 31 digits: almost a real key
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ops.OpError) as info:
            await ops.call(daemon.core, "device.create", {"name": "x", "lorawan": {
                "dev_eui": ABP_EUI, "dev_addr": "26011bda", "nwk_s_key": secretish, "app_s_key": ABP_APP}})
    assert "NwkSKey must be 32 hexadecimal digits" in info.value.message
    assert secretish not in info.value.message and secretish not in caplog.text


async def test_duplicate_dev_eui_is_refused(daemon):
    await add_abp(daemon.core)
    with pytest.raises(ops.OpError) as info:
        await add_otaa(daemon.core, dev_eui=ABP_EUI.upper())
    assert info.value.code == "conflict"


async def test_keys_are_sealed_in_the_journal_and_shown_only_to_operators(daemon):
    core = daemon.core
    created = await add_abp(core)
    await add_otaa(core)
    assert "nwk_s_key" not in created.get("lorawan", {}) and ABP_NWK not in str(created)
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        url = f"/api/lorawan/devices/{ABP_EUI}/keys"
        assert (await client.get(url)).status_code == 401
        r = await client.get(url, headers=daemon.auth)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
        assert r.json() == {"dev_eui": ABP_EUI, "dev_addr": "26011bda", "AppKey": None, "NwkSKey": ABP_NWK,
                            "AppSKey": ABP_APP}
        otaa = (await client.get(f"/api/lorawan/devices/{OTAA_EUI}/keys", headers=daemon.auth)).json()
        assert otaa["AppKey"] == OTAA_KEY and otaa["NwkSKey"] is None
        listed = (await client.get("/api/lorawan/devices", headers=daemon.auth)).text
        devices = (await client.get("/api/devices", headers=daemon.auth)).text
    for key in (ABP_NWK, ABP_APP, OTAA_KEY):
        assert key not in listed and key not in devices
    await wait_for(lambda: len(records_of(core, "lorawan.keys_shown")) == 2)
    assert records_of(core, "lorawan.keys_shown")[0].data["actor"] == "apikey:tests"
    stored = journal_bytes(core)
    for key in (ABP_NWK, ABP_APP, OTAA_KEY):
        assert key.encode() not in stored and key.upper().encode() not in stored

"""The MAC layer over real UDP: answers alone on FPort 0 or in FOpts, DevStatus on the monitor and in
`lorawan show`, ADR walking a device from SF12 to SF7, class C, and a replay that rebuilds it all."""

from __future__ import annotations

import httpx
import pytest

from gatewayd import ops
from gatewayd.connectors.lorawan.mac_commands import MacCommand, encode_all
from gatewayd.connectors.lorawan.service import _device_human

from .conftest import QUIET_MAC
from .helpers import ABP_EUI, GW1, UdpGateway, abp_device, add_abp, open_monitor, records_of
from tests.conftest import wait_for


@pytest.fixture
def lorawan_settings() -> dict:
    return dict(QUIET_MAC, dedup_window_ms=20)


def link_check() -> bytes:
    return encode_all([MacCommand("LinkCheckReq")])


async def test_link_check_answered_alone_on_port_0_then_in_fopts_with_data(daemon):
    await add_abp(daemon.core)
    device = abp_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        tmst = await gw.push(device.uplink(1, b"a", f_opts=link_check()), lsnr=-2.0)
        txpk = (await gw.pull_resp()).txpk
        assert txpk.tmst == tmst + 1_000_000 and txpk.datr == "SF7BW125"
        down = device.decode_downlink(txpk.data)
        assert down["f_port"] == 0 and down["f_opts"] == b""
        # SF7 needs -7.5 dB: -2.0 leaves 5 dB; one gateway heard it.
        assert [(c.name, c.fields) for c in down["mac"]] == [("LinkCheckAns", {"margin": 5, "gw_cnt": 1})]
        rx = await monitor.comm("comm_rx", DevEui=ABP_EUI)
        assert rx["Extra"]["mac_up"] == '[{"cmd":"LinkCheckReq"}]'
        assert rx["Extra"]["mac_down"] == '[{"cmd":"LinkCheckAns","gw_cnt":1,"margin":5}]'

        await monitor.tx({"function": "TX", "DevEUI": ABP_EUI, "Port": 4, "Payload": "0a0b", "Reference": "r"})
        await gw.push(device.uplink(2, b"b", f_opts=encode_all([MacCommand("DeviceTimeReq")])))
        down = device.decode_downlink((await gw.pull_resp()).txpk.data)
        assert down["f_port"] == 4 and down["payload"] == b"\x0a\x0b"
        assert [c.name for c in down["mac"]] == ["DeviceTimeAns"] and down["f_opts"][0] == 0x0D
    uplinks = records_of(daemon.core, "lorawan.uplink")
    assert uplinks[-1].data["downlink"]["mac"][0]["cmd"] == "DeviceTimeAns"


@pytest.mark.parametrize("lorawan_settings", [dict(QUIET_MAC, dedup_window_ms=20, dev_status_hours=1.0)])
async def test_dev_status_is_asked_shown_streamed_and_rebuilt_on_replay(daemon):
    await add_abp(daemon.core)
    device = abp_device()
    device.battery, device.margin = 127, -3
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        await gw.push(device.uplink(1, b"first"))
        down = device.decode_downlink((await gw.pull_resp()).txpk.data)
        assert [c.name for c in down["mac"]] == ["DevStatusReq"] and down["f_port"] == 0
        await gw.push(device.uplink(1, b"second"))  # carries the DevStatusAns in FOpts
        rx = await monitor.comm("comm_rx", DevEui=ABP_EUI, Payload=b"second".hex())
        assert rx["Extra"]["battery"] == "127" and rx["Extra"]["margin"] == "-3"
        await gw.no_pull_resp(0.3)  # nothing more to ask for an hour
    view = await ops.call(daemon.core, "lorawan.device", {"dev_eui": ABP_EUI})
    assert view["mac"]["battery"] == 127 and view["mac"]["margin"] == -3 and view["mac"]["pending"] == []
    text = _device_human(view)
    assert "battery: 50% (127/254)" in text and "margin: -3 dB" in text and "data rate: DR5" in text

    await daemon.restart()
    rebuilt = await ops.call(daemon.core, "lorawan.device", {"dev_eui": ABP_EUI})
    assert rebuilt["mac"] == view["mac"]
    assert daemon.core.state.lorawan.device(ABP_EUI)["mac"]["status_asked"] is not None


DATR = {0: "SF12BW125", 1: "SF11BW125", 2: "SF10BW125", 3: "SF9BW125", 4: "SF8BW125", 5: "SF7BW125"}


async def test_adr_walks_an_eu868_device_from_sf12_to_sf7(daemon):
    core = daemon.core
    await add_abp(core)
    device = abp_device()
    session = core.state.lorawan.device(ABP_EUI)
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        for n in range(20):
            await gw.push(device.uplink(1, bytes([n]), adr=True), datr=DATR[device.dr], lsnr=6.0)
            await wait_for(lambda: session["uplinks"] == n + 1)
        assert device.dr == 0 and not gw.pull_resps  # nothing said while the history fills
        # 20 uplinks at SF12 with 6 dB of SNR: 6 + 20 - 10 = 16 dB of room, 5 steps: DR5 and no power step.
        down = device.decode_downlink((await gw.pull_resp()).txpk.data)
        (adr,) = [c for c in down["mac"] if c.name == "LinkADRReq"]
        assert adr.fields == {"data_rate": 5, "tx_power": 0, "nb_trans": 1, "ch_mask_cntl": 0, "ch_mask": 0b111}
        assert device.dr == 5
        await gw.push(device.uplink(1, b"fast", adr=True), datr=DATR[device.dr], lsnr=6.0)
        rx = await monitor.comm("comm_rx", DevEui=ABP_EUI, Payload=b"fast".hex())
    assert rx["Extra"]["sf"] == "7" and rx["Extra"]["dr"] == "5"
    assert rx["Extra"]["mac_up"].startswith('[{"channel_mask_ack":true,"cmd":"LinkADRAns"')
    await wait_for(lambda: session["mac"]["dr"] == 5)
    assert session["mac"]["history"] == [] and session["last_dr"] == 5


async def test_class_c_downlink_goes_out_at_once_on_rx2(daemon):
    core = daemon.core
    await add_abp(core)
    device = abp_device()
    async with open_monitor(daemon, "") as monitor, UdpGateway(daemon.udp_port) as gw, \
            httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as client:
        await gw.pull()
        await gw.push(device.uplink(1, b"hello"))
        await monitor.comm("comm_rx", DevEui=ABP_EUI)
        changed = await client.patch(f"/api/lorawan/devices/{ABP_EUI}", json={"class": "c"})
        assert changed.status_code == 200 and changed.json()["class"] == "C"
        assert (await client.patch(f"/api/lorawan/devices/{ABP_EUI}", json={"class": "B"})).status_code == 422
        reply = await monitor.tx({"function": "TX", "DevEUI": ABP_EUI, "Port": 8, "Payload": "c0ffee",
                                  "Reference": "now"})
        assert reply["Result"] == "Success"
        resp = await gw.pull_resp()
        txpk = resp.txpk
        assert txpk.imme and txpk.freq == 869.525 and txpk.datr == "SF12BW125" and txpk.tmst is None
        down = device.decode_downlink(txpk.data)
        assert down["f_port"] == 8 and down["payload"] == b"\xc0\xff\xee" and down["f_cnt"] == 0
        sent = await monitor.comm("comm_tx", Reference="now")
        assert sent["GatewayEUIs"] == [GW1] and sent["Extra"]["window"] == "BOTH"
        await gw.tx_ack(resp.token)
        await monitor.comm("comm_txsendack", Reference="now")
        # The counter is durable: the next class A downlink continues from it.
        await monitor.tx({"function": "TX", "DevEUI": ABP_EUI, "Port": 8, "Payload": "01", "Reference": "two"})
        assert device.decode_downlink((await gw.pull_resp()).txpk.data)["f_cnt"] == 1
    assert core.state.lorawan.device(ABP_EUI)["fcnt_down"] == 2
    assert [r.data["downlink"]["fcnt"] for r in records_of(core, "lorawan.downlink")] == [0, 1]
    await daemon.restart()
    session = daemon.core.state.lorawan.device(ABP_EUI)
    assert session["fcnt_down"] == 2 and session["settings"]["class"] == "C"


def test_class_and_mac_settings_from_the_command_line(tmp_path):
    from tests.conftest import run_cli

    from .helpers import ABP_ADDR, ABP_APP, ABP_NWK

    state = ["--state-dir", str(tmp_path / "state")]
    added = run_cli("device", "add", "valve", "--lorawan", "--dev-eui", ABP_EUI, "--dev-addr", ABP_ADDR,
                    "--nwk-s-key", ABP_NWK, "--app-s-key", ABP_APP, "--class", "C", *state)
    assert added.returncode == 0, added.stderr
    shown = run_cli("lorawan", "show", ABP_EUI, *state)
    assert shown.returncode == 0 and "class: C" in shown.stdout and "battery: unknown" in shown.stdout
    assert "RX2 869.525 MHz DR0" in shown.stdout
    changed = run_cli("lorawan", "set", ABP_EUI, "--class", "A", "--rx2-dr", "3", "--rx1-delay", "2", *state)
    assert changed.returncode == 0, changed.stderr
    assert "class: A" in changed.stdout and "settings: rx2_dr=3, rx1_delay=2" in changed.stdout
    refused = run_cli("lorawan", "set", ABP_EUI, "--rx2-dr", "9", *state)
    assert refused.returncode != 0 and "rx2_dr must be a whole number from 0 to 7 in EU868" in refused.stderr


async def test_dashboard_shows_the_link_and_sets_the_class(daemon):
    from tests.dashboard.helpers import logged_in

    created = await add_abp(daemon.core)
    device_id = created["id"]
    async with logged_in(daemon) as (http, csrf):
        page = await http.get(f"/devices/{device_id}")
        assert page.status_code == 200 and "LoRaWAN link" in page.text and "not reported yet" in page.text
        response = await http.post(f"/devices/{device_id}/lorawan-class", data={"csrf_token": csrf, "class": "C"})
        assert response.status_code in (302, 303)
        assert daemon.core.state.lorawan.device(ABP_EUI)["settings"]["class"] == "C"
        assert 'value="C" selected' in (await http.get(f"/devices/{device_id}")).text
        bad = await http.post(f"/devices/{device_id}/lorawan-class", data={"csrf_token": csrf, "class": "B"},
                              follow_redirects=True)
        assert "class must be A or C" in bad.text
    assert daemon.core.state.lorawan.device(ABP_EUI)["settings"]["class"] == "C"


async def test_class_c_confirmed_waits_for_the_ack_and_a_refused_frame_goes_again(daemon):
    core = daemon.core
    await add_abp(core)
    await ops.call(core, "lorawan.settings", {"dev_eui": ABP_EUI, "class": "C"})
    device = abp_device()
    async with open_monitor(daemon, "") as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        await gw.push(device.uplink(1, b"here"))
        await monitor.comm("comm_rx", DevEui=ABP_EUI)
        for ref, confirm in (("c1", True), ("c2", False)):
            await monitor.tx({"function": "TX", "DevEUI": ABP_EUI, "Port": 2, "Payload": "01", "Reference": ref,
                              "Confirm": confirm})
        first = await gw.pull_resp()
        down = device.decode_downlink(first.txpk.data)
        assert first.txpk.imme and down["confirmed"] and down["payload"] == b"\x01"
        await gw.no_pull_resp(1.5)  # c2 waits: c1 is not acknowledged yet
        await gw.push(device.uplink(1, b"ack", ack=True))
        await monitor.comm("comm_txconfirm", Reference="c1")
        second = await gw.pull_resp()  # class A answer or class C: either way c2 goes out now
        assert device.decode_downlink(second.txpk.data)["f_cnt"] == 1
        await gw.tx_ack(second.token, "COLLISION_PACKET")
        again = await gw.pull_resp(timeout=5.0)  # back at the head of the queue, and sent again
        redo = device.decode_downlink(again.txpk.data)
        assert again.txpk.imme and redo["f_cnt"] == 2 and redo["payload"] == b"\x01"
    session = core.state.lorawan.device(ABP_EUI)
    assert session["queue"] == [] and session["awaiting_ack"] is None and session["fcnt_down"] == 3


def test_device_table_shows_class_data_rate_and_battery():
    from gatewayd.connectors.lorawan.service import _devices_table

    row = {"dev_eui": ABP_EUI, "name": "valve", "activation": "abp", "class": "C", "dev_addr": "26011bda",
           "fcnt_up": 4, "fcnt_down": 2, "last_seen": None, "queue": [], "mac": {"dr": 5, "battery": 200}}
    header, line = _devices_table([row]).splitlines()[:2]
    assert header.split()[3:5] == ["CLASS", "DEV_ADDR"] and line.split()[3] == "C" and line.split()[8] == "200"

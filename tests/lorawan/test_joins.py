"""OTAA over real UDP: join-accept the device can read, derived keys, DevNonce replay, rejoin."""

from __future__ import annotations

import base64

from gatewayd.connectors.lorawan import frames as lorawan

from .helpers import (GW1, GW2, OTAA_APP_EUI, OTAA_EUI, UdpGateway, add_otaa, dropped, journal_bytes,
                      open_monitor, otaa_device, records_of)
from tests.conftest import wait_for


def short_hold(daemon) -> None:
    """Treat an identical frame as a new transmission as soon as its window closed instead of after
    the receive windows (a device repeats a join-request seconds later; the tests do not wait)."""
    daemon.core.service("lorawan").network.dedup.hold = 0.0


async def join(gw: UdpGateway, device, nonce: int, **radio):
    tmst = await gw.push(device.join_request(nonce), **radio)
    resp = await gw.pull_resp()
    return tmst, resp


async def test_join_accept_is_readable_and_derived_keys_decode_uplinks(daemon):
    core = daemon.core
    await add_otaa(core)
    device = otaa_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        tmst, resp = await join(gw, device, 0x1234, freq=868.5, datr="SF10BW125")
        txpk = resp.txpk
        assert txpk.tmst == tmst + 5_000_000 and txpk.freq == 868.5 and txpk.datr == "SF10BW125"
        assert txpk.ipol is True and not txpk.imme
        accept = device.decode_downlink(txpk.data)  # checks the MIC with the AppKey
        assert accept["net_id"] == 0 and accept["rx_delay"] == 1 and accept["rx1_dr_offset"] == 0
        joined = await monitor.comm("comm_join", DevEui=OTAA_EUI)
        assert joined["Extra"]["accepted"] == "true" and joined["Extra"]["devnonce"] == str(0x1234)
        assert joined["AppEui"] == OTAA_APP_EUI and joined["GatewayEUIs"] == [GW1]
        assert joined["Extra"]["devaddr"] == lorawan.dev_addr_hex(device.dev_addr)

        await gw.push(device.uplink(7, b"after join"))
        rx = await monitor.comm("comm_rx")
    assert rx["DevEui"] == OTAA_EUI and rx["Payload"] == b"after join".hex() and rx["Extra"]["seqno"] == "0"
    session = core.state.lorawan.device(OTAA_EUI)
    assert session["dev_addr"] == lorawan.dev_addr_hex(device.dev_addr) and session["dev_nonces"] == [0x1234]
    # Session keys are journaled sealed, never in clear.
    stored = journal_bytes(core)
    for key in (device.nwk_s_key, device.app_s_key, device.app_key):
        assert key.hex().encode() not in stored and key.hex().upper().encode() not in stored
        assert base64.b64encode(key) not in stored


async def test_join_accept_goes_through_the_best_gateway_with_a_downlink_path(daemon):
    await add_otaa(daemon.core)
    device = otaa_device()
    async with UdpGateway(daemon.udp_port, GW1) as g1, UdpGateway(daemon.udp_port, GW2) as g2:
        await g1.pull()
        await g2.pull()
        phy = device.join_request(7)
        await g1.push(phy, lsnr=-2.0)
        tmst2 = await g2.push(phy, lsnr=6.0)
        resp = await g2.pull_resp()
        assert resp.txpk.tmst == tmst2 + 5_000_000
        await g1.no_pull_resp(0.3)


async def test_dev_nonce_replay_is_refused_and_journaled(daemon):
    core = daemon.core
    short_hold(daemon)
    await add_otaa(core)
    device = otaa_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        await join(gw, device, 42)
        first_addr = core.state.lorawan.device(OTAA_EUI)["dev_addr"]
        await gw.push(device.join_request(42))
        refused = await monitor.expect(lambda f: f["CommType"] == "comm_join" and f["Extra"]["accepted"] == "false")
        await gw.no_pull_resp(0.3)
    assert refused["DevEui"] == OTAA_EUI and refused["Extra"]["reason"] == "dev_nonce_replay"
    assert refused["Extra"]["devnonce"] == "42"
    assert [r.data["dev_nonce"] for r in records_of(core, "lorawan.join_refused")] == [42]
    assert core.state.lorawan.device(OTAA_EUI)["dev_addr"] == first_addr
    assert dropped(core, "dev_nonce_replay") == 1


async def test_rejoin_gives_a_fresh_session_and_the_old_devaddr_stops_matching(daemon):
    core = daemon.core
    short_hold(daemon)
    await add_otaa(core)
    device = otaa_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        _, resp = await join(gw, device, 1)
        device.decode_downlink(resp.txpk.data)
        for n in range(3):
            await gw.push(device.uplink(1, bytes([n])))
        await monitor.expect(lambda f: len(monitor.all("comm_rx")) == 3)
        old = otaa_device()
        old.dev_addr, old.nwk_s_key, old.app_s_key, old.fcnt = device.dev_addr, device.nwk_s_key, device.app_s_key, 3

        _, resp = await join(gw, device, 2)
        device.decode_downlink(resp.txpk.data)
        assert device.dev_addr != old.dev_addr
        await gw.push(old.uplink(1, b"old session"))
        await wait_for(lambda: dropped(core, "unknown_devaddr") == 1)
        await gw.push(device.uplink(1, b"new session"))
        rx = await monitor.comm("comm_rx", Payload=b"new session".hex())
    assert rx["Extra"]["seqno"] == "0"
    assert core.state.lorawan.device(OTAA_EUI)["dev_nonces"] == [1, 2]


async def test_join_with_a_wrong_app_key_or_unknown_device_is_only_counted(daemon):
    core = daemon.core
    await add_otaa(core)
    async with UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        impostor = lorawan.build_join_request(bytes(16), OTAA_APP_EUI, OTAA_EUI, 9)
        stranger = lorawan.build_join_request(bytes(16), OTAA_APP_EUI, "0102030405060708", 9)
        await gw.push(impostor, stranger)
        await wait_for(lambda: dropped(core, "bad_mic") == 1 and dropped(core, "unknown_dev_eui") == 1)
        await gw.no_pull_resp(0.2)
    assert records_of(core, "lorawan.join") == [] and records_of(core, "lorawan.join_refused") == []

"""Uplinks over real UDP: decoding, dedup across gateways, FCnt rules, MIC, monitoring frames."""

from __future__ import annotations

from gatewayd import ops
from gatewayd.connectors.lorawan import frames as lorawan

from .helpers import (ABP_ADDR, ABP_EUI, ABP_NWK, GW1, GW2, GW3, UdpGateway, abp_device, add_abp, dropped,
                      open_monitor, records_of)
from tests.lorasim import SimDevice
from tests.conftest import wait_for


async def test_abp_uplink_gives_gwrx_and_rx_on_the_monitor(daemon):
    core = daemon.core
    await add_abp(core)
    device = abp_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        phy = device.uplink(10, b"hello")
        await gw.push(phy, rssi=-61, lsnr=7.25, freq=868.3, datr="SF9BW125")
        rx = await monitor.comm("comm_rx")
        gwrx = await monitor.comm("comm_gwrx")
    assert rx["DevEui"] == ABP_EUI and rx["Connector"] == "lorawan".encode().hex()
    assert rx["Port"] == "10" and rx["Payload"] == b"hello".hex()
    assert rx["GatewayEUIs"] == [GW1]
    assert rx["Extra"]["seqno"] == "0" and rx["Extra"]["duplicate"] == "false"
    assert rx["Extra"]["rssi"] == "-61" and rx["Extra"]["snr"] == "7.25"
    assert rx["Extra"]["sf"] == "9" and rx["Extra"]["modBW"] == "125" and rx["Extra"]["frequency"] == "868.3"
    assert gwrx["GatewayEUIs"] == [GW1] and gwrx["Payload"] == phy.hex() and gwrx["Seq"] == rx["Seq"]
    session = core.state.lorawan.device(ABP_EUI)
    assert session["fcnt_up"] == 1 and session["last_dr"] == 3


async def test_one_frame_from_three_gateways_is_one_uplink(daemon):
    core = daemon.core
    await add_abp(core)
    phy = abp_device().uplink(3, b"\x01\x02")
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port, GW1) as g1, \
            UdpGateway(daemon.udp_port, GW2) as g2, UdpGateway(daemon.udp_port, GW3) as g3:
        await g1.push(phy, lsnr=1.0, rssi=-100)
        await g2.push(phy, lsnr=8.5, rssi=-70)
        await g3.push(phy, lsnr=-3.0, rssi=-60)
        rx = await monitor.comm("comm_rx")
        await monitor.expect(lambda f: len(monitor.all("comm_gwrx")) == 3)
    assert sorted(rx["GatewayEUIs"]) == [GW1, GW2, GW3]
    assert rx["GatewayEUIs"][0] == GW2  # best SNR first
    assert rx["Extra"]["snr"] == "8.5" and rx["Extra"]["rssi"] == "-60"
    assert sorted(f["GatewayEUIs"][0] for f in monitor.all("comm_gwrx")) == [GW1, GW2, GW3]
    assert len(monitor.all("comm_rx")) == 1
    assert len(records_of(core, "lorawan.uplink")) == 1  # one journal record for the three copies


async def test_replayed_counter_is_dropped_and_next_minus_one_is_a_retransmission(daemon):
    core = daemon.core
    await add_abp(core)
    device = abp_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        for n in range(3):
            await gw.push(device.uplink(1, bytes([n])))
        await monitor.expect(lambda f: len(monitor.all("comm_rx")) == 3)
        await gw.push(device.uplink(1, b"replay", fcnt=0))  # an old counter with a valid MIC
        await wait_for(lambda: dropped(core, "fcnt_replay") == 1)
        await gw.push(device.uplink(1, b"again", fcnt=2))  # exactly next - 1
        again = await monitor.comm("comm_rx", Payload=b"again".hex())
        await gw.push(device.uplink(1, b"new"))
        new = await monitor.comm("comm_rx", Payload=b"new".hex())
    assert again["Extra"]["duplicate"] == "true" and again["Extra"]["seqno"] == "2"
    assert new["Extra"]["duplicate"] == "false" and new["Extra"]["seqno"] == "3"
    assert not [f for f in monitor.frames if f.get("Payload") == b"replay".hex()]
    assert core.state.lorawan.device(ABP_EUI)["fcnt_up"] == 4


async def test_bad_mic_is_dropped_and_counted(daemon):
    core = daemon.core
    await add_abp(core)
    forged = SimDevice.abp(ABP_ADDR, "00" * 16, "00" * 16)
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.push(forged.uplink(1, b"forged"))
        await wait_for(lambda: dropped(core, "bad_mic") == 1)
        await gw.push(abp_device().uplink(1, b"real"))
        rx = await monitor.comm("comm_rx")
    assert rx["Payload"] == b"real".hex()
    assert [f for f in monitor.frames if f["Payload"] == b"forged".hex()] == []
    foreign = [f for f in monitor.all("comm_gwrx") if f["Extra"]["Mine"] == "false"]
    assert [(f["DevEui"], f["Extra"]["devaddr"], f["Extra"]["reason"]) for f in foreign] == \
        [("", ABP_ADDR, "bad_mic")]
    assert [f["Extra"]["Mine"] for f in monitor.all("comm_gwrx") if f["Seq"] == rx["Seq"]] == ["true"]
    assert len(records_of(core, "lorawan.uplink")) == 1


async def test_unknown_devaddr_and_crc_errors_are_dropped(daemon):
    core = daemon.core
    await add_abp(core)
    stranger = SimDevice.abp("01020304", ABP_NWK, ABP_NWK)
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        phy = stranger.uplink(1, b"x")
        await gw.push(phy, rssi=-90)
        await gw.push_packets(gw.sim.rx_packet(abp_device().uplink(1, b"y"), stat=-1))
        await wait_for(lambda: dropped(core, "unknown_devaddr") == 1 and dropped(core, "crc") == 1)
        # Not ours, yet shown: one comm_gwrx per gateway copy, Mine "false", no DevEui.
        foreign = await monitor.comm("comm_gwrx", Payload=phy.hex())
    assert foreign["DevEui"] == "" and foreign["GatewayEUIs"] == [GW1] and foreign["Port"] == ""
    assert foreign["Extra"]["Mine"] == "false" and foreign["Extra"]["devaddr"] == "01020304"
    assert foreign["Extra"]["reason"] == "unknown_devaddr" and foreign["Extra"]["rssi"] == "-90"
    assert [f for f in monitor.all("comm_rx")] == []
    assert core.state.lorawan.device(ABP_EUI)["fcnt_up"] == 0
    assert core.state.lorawan.gateways[GW1]["foreign"] == 1


async def test_relaxed_device_may_restart_its_counter(daemon):
    core = daemon.core
    await add_abp(core, relax=True)
    device = abp_device(fcnt=40)
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.push(device.uplink(1, b"a"))
        await monitor.comm("comm_rx", Payload=b"a".hex())
        restarted = abp_device(fcnt=0)
        await gw.push(restarted.uplink(1, b"b"))
        rx = await monitor.comm("comm_rx", Payload=b"b".hex())
    assert rx["Extra"]["seqno"] == "0" and rx["Extra"]["fcnt_reset"] == "true"
    assert core.state.lorawan.device(ABP_EUI)["fcnt_up"] == 1


async def test_counter_gap_is_bounded_and_the_full_counter_is_rebuilt_past_16_bits(daemon):
    core = daemon.core
    await add_abp(core)
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.push(abp_device(fcnt=lorawan.MAX_FCNT_GAP + 1).uplink(1, b"far"))
        await wait_for(lambda: dropped(core, "fcnt_gap") == 1)
        assert core.state.lorawan.device(ABP_EUI)["fcnt_up"] == 0
        counters = [lorawan.MAX_FCNT_GAP * k for k in (1, 2, 3)] + [0xFFFE, 0x1_0002]
        for fcnt in counters:  # each step within MAX_FCNT_GAP; the last one's 16 bits on air are 2
            await gw.push(abp_device(fcnt=fcnt).uplink(1, fcnt.to_bytes(4, "big")))
            rx = await monitor.comm("comm_rx", Payload=fcnt.to_bytes(4, "big").hex())
            assert rx["Extra"]["seqno"] == str(fcnt)
    assert core.state.lorawan.device(ABP_EUI)["fcnt_up"] == 0x1_0003


async def test_a_copy_straggling_in_after_the_window_is_not_a_new_uplink(daemon):
    core = daemon.core
    await add_abp(core)
    phy = abp_device().uplink(1, b"once")
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port, GW1) as g1, \
            UdpGateway(daemon.udp_port, GW2) as g2:
        await g1.push(phy)
        await monitor.comm("comm_rx")
        await g2.push(phy)
        await wait_for(lambda: dropped(core, "late_copy") == 1)
    assert len(monitor.all("comm_rx")) == 1
    assert core.state.lorawan.device(ABP_EUI)["uplinks"] == 1


async def test_disabled_and_deleted_devices_are_not_heard(daemon):
    core = daemon.core
    device_id = (await add_abp(core))["id"]
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await ops.call(core, "device.disable", {"device_id": device_id})
        await gw.push(abp_device().uplink(1, b"off"))
        await wait_for(lambda: dropped(core, "device_disabled") == 1)
        await ops.call(core, "device.enable", {"device_id": device_id})
        await gw.push(abp_device(fcnt=1).uplink(1, b"on"))
        await monitor.comm("comm_rx", Payload=b"on".hex())
        await ops.call(core, "device.delete", {"device_id": device_id})
        assert core.state.lorawan.device(ABP_EUI) is None
        await gw.push(abp_device(fcnt=2).uplink(1, b"gone"))
        await wait_for(lambda: dropped(core, "unknown_devaddr") == 1)

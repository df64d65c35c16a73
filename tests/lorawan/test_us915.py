"""A US915 network (sub-band 2) over real UDP: join on a 125 kHz channel, the join-accept on the
500 kHz downlink channel (uplink channel mod 8) with the sub-band's channel mask, then class A."""

from __future__ import annotations

import pytest

from gatewayd.connectors.lorawan import frames as lorawan

from .helpers import OTAA_EUI, UdpGateway, add_otaa, open_monitor, otaa_device


@pytest.fixture
def lorawan_settings() -> dict:
    return {"region": "US915", "sub_band": 2}


async def test_us915_join_and_class_a_downlink(daemon):
    core = daemon.core
    await add_otaa(core)
    device = otaa_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        # Channel 9 (904.1 MHz) at DR0 -> RX1 on downlink channel 1 (923.9 MHz) at DR10.
        tmst = await gw.push(device.join_request(0x0042), freq=904.1, datr="SF10BW125")
        txpk = (await gw.pull_resp()).txpk
        assert txpk.tmst == tmst + 5_000_000 and txpk.freq == 923.9 and txpk.datr == "SF10BW500"
        assert txpk.powe == 20  # the region's downlink power (lorawan.tx_power = 0)
        accept = device.decode_downlink(txpk.data)
        assert accept["rx2_dr"] == 8
        # CFList type 1: channels 8-15 and 65 enabled, nothing else.
        mask = accept["cflist"]
        words = [int.from_bytes(mask[i:i + 2], "little") for i in range(0, 10, 2)]
        assert words == [0xFF00, 0, 0, 0, 0x0002] and mask[15] == 1
        await monitor.comm("comm_join", DevEui=OTAA_EUI)

        reply = await monitor.tx({"function": "TX", "DevEUI": OTAA_EUI.upper(), "Port": 3, "Payload": "beef",
                                  "Reference": "us-1"})
        assert reply["Result"] == "Success"
        # The 500 kHz uplink channel 65 (904.6 MHz, DR4) -> downlink channel 1 at DR13.
        tmst = await gw.push(device.uplink(1, b"hello"), freq=904.6, datr="SF8BW500")
        txpk = (await gw.pull_resp()).txpk
        assert txpk.tmst == tmst + 1_000_000 and txpk.freq == 923.9 and txpk.datr == "SF7BW500"
        down = device.decode_downlink(txpk.data)
        assert down["f_port"] == 3 and down["payload"] == b"\xbe\xef"
        rx = await monitor.comm("comm_rx", DevEui=OTAA_EUI)
    assert rx["Extra"]["dr"] == "4" and rx["Extra"]["sf"] == "8" and rx["Extra"]["modBW"] == "500"
    assert core.state.lorawan.device(OTAA_EUI)["dev_addr"] == lorawan.dev_addr_hex(device.dev_addr)

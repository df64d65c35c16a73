"""Hypothesis against the LoRaWAN input path: whatever a gateway sends, the listener and the network
service neither raise nor accept a frame that does not authenticate."""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd import ops
from gatewayd.connectors.lorawan import gwmp, frames as lorawan
from gatewayd.connectors.lorawan import packets
from gatewayd.gateway import open_core
from gatewayd.connectors.lorawan.udp import GwmpListener

from .helpers import ABP_ADDR, ABP_EUI, GW1, abp_device
from tests.conftest import make_settings

ADDR = ("127.0.0.1", 40000)
DEV_ADDR_LE = bytes.fromhex(ABP_ADDR)[::-1]

phy_bytes = st.one_of(
    st.binary(max_size=260),
    # data frames for our DevAddr with arbitrary FCtrl, counter, options, payload and MIC
    st.builds(lambda mhdr, tail: bytes([mhdr]) + DEV_ADDR_LE + tail,
              st.sampled_from([0x40, 0x80, 0x60, 0xA0, 0x00]), st.binary(min_size=0, max_size=60)),
)


def rx(phy: bytes, **radio) -> packets.RxPacket:
    return packets.RxPacket(tmst=radio.get("tmst", 1000), freq=radio.get("freq", 868.1), modu="LORA",
                         datr=radio.get("datr", "SF7BW125"), data=phy, rssi=-50, lsnr=5.0, chan=0, rfch=0)


datagrams = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda ident, body: bytes([2, 0, 1, ident]) + bytes.fromhex(GW1) + body,
              st.sampled_from([0, 2, 5]), st.binary(max_size=200)),
    st.builds(lambda phys, tmst, datr: gwmp.push_data(2, 7, GW1, [rx(p, tmst=tmst, datr=datr) for p in phys]),
              st.lists(phy_bytes, min_size=1, max_size=4), st.integers(0, 0xFFFF_FFFF),
              st.sampled_from(["SF7BW125", "SF12BW125", "SF7BW500", "sf9bw125"])),
)


async def _feed(state_dir: Path, items: list[bytes]) -> None:
    """Hand datagrams to a listener on a real core and decide every frame they carried."""
    async with open_core(make_settings(state_dir), online=False) as core:
        await ops.call(core, "device.create", {"name": "fuzz", "lorawan": {
            "dev_eui": ABP_EUI, "dev_addr": ABP_ADDR, "nwk_s_key": "2b7e151628aed2a6abf7158809cf4f3c",
            "app_s_key": "3c4fcf098815f7aba6d2ae2816157e2b"}})
        service = core.service("lorawan")
        listener = GwmpListener(core)
        for data in items:
            await listener.handle(service, data, ADDR)  # must not raise, whatever the bytes
        due = service.network.dedup.pop_due(trio.current_time() + 10)
        await service.network.decide_pass(due)
        assert core.state.lorawan.device(ABP_EUI)["uplinks"] == 0  # nothing forged got through


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(datagrams, min_size=1, max_size=5))
def test_any_datagrams_are_handled_without_raising(items):
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(_feed, Path(tmp) / "state", items)


@settings(max_examples=60, deadline=None)
@given(fcnt=st.integers(0, 3000), port=st.integers(1, 223), payload=st.binary(max_size=50),
       flip=st.one_of(st.none(), st.tuples(st.integers(0, 80), st.integers(1, 255))))
def test_only_authentic_frames_are_accepted(fcnt, port, payload, flip):
    phy = bytearray(abp_device(fcnt=fcnt).uplink(port, payload))
    changed = flip is not None and flip[0] < len(phy)
    if changed:
        phy[flip[0]] ^= flip[1]

    async def check():
        with tempfile.TemporaryDirectory() as tmp:
            state_dir = Path(tmp) / "state"
            async with open_core(make_settings(state_dir), online=False) as core:
                await ops.call(core, "device.create", {"name": "fuzz", "lorawan": {
                    "dev_eui": ABP_EUI, "dev_addr": ABP_ADDR, "nwk_s_key": "2b7e151628aed2a6abf7158809cf4f3c",
                    "app_s_key": "3c4fcf098815f7aba6d2ae2816157e2b"}})
                service = core.service("lorawan")
                service.network.receive(GW1, rx(bytes(phy)), trio.current_time())
                due = service.network.dedup.pop_due(trio.current_time() + 10)
                decisions = [service.network.decide(p, trio.current_time()) for p in due]
                # A frame that is not ours (unknown address, no key matches) is only shown to monitors.
                accepted = [d for d in decisions if d is not None and d.type != "lorawan.foreign_uplink"]
                if not changed:
                    assert [d.data["payload"] for d in accepted] == [payload.hex()]
                    assert accepted[0].data["fcnt"] == fcnt
                else:
                    # A changed frame is only ever accepted if it still authenticates: the MIC
                    # covers everything but itself, so that means the flip hit nothing that counts.
                    for d in accepted:
                        frame = lorawan.parse_phy(bytes(phy))
                        nwk = lorawan.parse_key("2b7e151628aed2a6abf7158809cf4f3c")
                        assert lorawan.verify_data_mic(frame, nwk, d.data["fcnt"])

    trio.run(check)

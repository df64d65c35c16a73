"""MAC command codec: every LoRaWAN 1.0.x command round trip (hypothesis), known bytes, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from gatewayd.connectors.lorawan import mac_commands as mc
from gatewayd.errors import ProtocolError

EVERY_COMMAND = sorted(mc.BY_NAME)


def _field_strategy(kind: str, width: int | None = None):
    if kind == "freq":
        return st.integers(0, (1 << 24) - 1).map(lambda n: n * 100)
    if kind == "s6":
        return st.integers(-32, 31)
    if kind == "bits":
        return st.booleans() if width == 1 else st.integers(0, (1 << width) - 1)
    return st.integers(0, (1 << (8 * {"u8": 1, "u16": 2, "u24": 3, "u32": 4}[kind])) - 1)


def command_strategy(name: str):
    layout = mc.BY_NAME[name][2]
    fields = {}
    for kind, what in layout:
        if kind == "bits":
            for field, _, width in what:
                fields[field] = _field_strategy(kind, width)
        else:
            fields[what] = _field_strategy(kind)
    return st.fixed_dictionaries(fields).map(lambda f: mc.MacCommand(name, f))


any_command = st.sampled_from(EVERY_COMMAND).flatmap(command_strategy)


def test_every_1_0_x_command_is_known_in_both_directions():
    assert {"LinkCheckReq", "LinkCheckAns", "LinkADRReq", "LinkADRAns", "DutyCycleReq", "DutyCycleAns",
            "RXParamSetupReq", "RXParamSetupAns", "DevStatusReq", "DevStatusAns", "NewChannelReq", "NewChannelAns",
            "RXTimingSetupReq", "RXTimingSetupAns", "TxParamSetupReq", "TxParamSetupAns", "DlChannelReq",
            "DlChannelAns", "DeviceTimeReq", "DeviceTimeAns", "PingSlotInfoReq", "PingSlotInfoAns",
            "PingSlotChannelReq", "PingSlotChannelAns", "BeaconTimingReq", "BeaconTimingAns", "BeaconFreqReq",
            "BeaconFreqAns"} == set(mc.BY_NAME)


@given(st.lists(any_command, max_size=8), st.booleans())
def test_round_trip(commands, uplink):
    commands = [c for c in commands if c.uplink == uplink]
    data = mc.encode_all(commands)
    assert len(data) == sum(c.size for c in commands)
    decoded, error = mc.decode(data, uplink=uplink)
    assert error is None and decoded == commands
    assert [mc.MacCommand.from_dict(c.as_dict()) for c in decoded] == commands


@given(st.binary(max_size=40), st.booleans())
def test_decode_never_raises_and_what_it_reads_encodes_back(data, uplink):
    decoded, error = mc.decode(data, uplink=uplink)
    again = mc.encode_all(decoded)
    assert len(again) <= len(data)
    assert mc.decode(again, uplink=uplink) == (decoded, None)
    if error is None:
        assert len(again) == len(data)


@pytest.mark.parametrize("hex_bytes, uplink, expected", [
    ("02", True, [("LinkCheckReq", {})]),
    ("020f03", False, [("LinkCheckAns", {"margin": 15, "gw_cnt": 3})]),
    ("0352ff0001", False, [("LinkADRReq", {"data_rate": 5, "tx_power": 2, "ch_mask": 0x00FF, "ch_mask_cntl": 0,
                                           "nb_trans": 1})]),
    ("0307", True, [("LinkADRAns", {"power_ack": True, "data_rate_ack": True, "channel_mask_ack": True})]),
    ("0306", True, [("LinkADRAns", {"power_ack": True, "data_rate_ack": True, "channel_mask_ack": False})]),
    ("06ff3e", True, [("DevStatusAns", {"battery": 255, "margin": -2})]),
    ("06fe14", True, [("DevStatusAns", {"battery": 254, "margin": 20})]),
    # 869.525 MHz = 8695250 x 100 Hz = 0x84ADD2; RX1DROffset 2, RX2 DR3.
    ("0523d2ad84", False, [("RXParamSetupReq", {"rx1_dr_offset": 2, "rx2_data_rate": 3, "frequency": 869_525_000})]),
    ("0703184f8450", False, [("NewChannelReq", {"ch_index": 3, "frequency": 867_100_000, "max_dr": 5,
                                                "min_dr": 0})]),
    ("0801", False, [("RXTimingSetupReq", {"delay": 1})]),
    ("0d", True, [("DeviceTimeReq", {})]),
    ("0d0a0b0c0d80", False, [("DeviceTimeAns", {"gps_seconds": 0x0D0C0B0A, "fraction": 128})]),
    ("020d06fe14", True, [("LinkCheckReq", {}), ("DeviceTimeReq", {}), ("DevStatusAns", {"battery": 254,
                                                                                         "margin": 20})]),
])
def test_known_bytes(hex_bytes, uplink, expected):
    decoded, error = mc.decode(bytes.fromhex(hex_bytes), uplink=uplink)
    assert error is None
    assert [(c.name, c.fields) for c in decoded] == expected
    assert mc.encode_all(decoded).hex() == hex_bytes


@pytest.mark.parametrize("hex_bytes, uplink, error", [
    ("0699", True, "DevStatusAns at byte 0 is cut short (1 of 2 bytes)"),
    ("02ee", True, "unknown MAC command 0xee at byte 1"),
    ("03", False, "LinkADRReq at byte 0 is cut short (0 of 4 bytes)"),
    ("0d", False, "DeviceTimeAns at byte 0 is cut short (0 of 5 bytes)"),
])
def test_hostile_input_reads_what_it_can(hex_bytes, uplink, error):
    decoded, got = mc.decode(bytes.fromhex(hex_bytes), uplink=uplink)
    assert got == error
    assert len(decoded) == (1 if hex_bytes.startswith("02ee") else 0)


@pytest.mark.parametrize("name, fields, words", [
    ("LinkADRReq", {"data_rate": 16, "tx_power": 0, "ch_mask": 0, "ch_mask_cntl": 0, "nb_trans": 1}, "0..15"),
    ("LinkADRReq", {"data_rate": 1}, "needs tx_power"),
    ("RXParamSetupReq", {"rx1_dr_offset": 0, "rx2_data_rate": 0, "frequency": 869_525_050}, "100 Hz"),
    ("DevStatusAns", {"battery": 1, "margin": 32}, "-32..31"),
    ("Nonsense", {}, "unknown MAC command"),
])
def test_encoding_refuses_bad_fields(name, fields, words):
    with pytest.raises(ProtocolError) as e:
        mc.make(name, **fields)
    assert e.value.code == "bad_mac" and words in e.value.message

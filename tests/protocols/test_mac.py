"""The MAC layer as a pure function: answers, requests, the ADR engine and the state fold."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from gatewayd.connectors.lorawan import adr, mac, regions
from gatewayd.connectors.lorawan.mac_commands import MacCommand

EU = mac.MacContext(regions.EU868)
NOW = 1_700_000_000.0


def uplink(fcnt=0, dr=5, snr=5.0, gateways=1, adr_bit=False, adr_ack_req=False, commands=(), now=NOW):
    return mac.Uplink(fcnt=fcnt, dr=dr, snr=snr, gateways=gateways, adr=adr_bit, adr_ack_req=adr_ack_req,
                      commands=tuple(MacCommand(c, f) for c, f in commands), now=now,
                      received=now)


def names(commands):
    return [c.name for c in commands]


def settle(state, up, sent, answers=()):
    """Fold an uplink and the downlink that answered it, then the device's answers in the next uplink."""
    mac.apply_uplink(state, up.fcnt, up.snr, up.adr, [c.as_dict() for c in up.commands])
    mac.apply_downlink(state, [c.as_dict() for c in sent], up.now)
    mac.apply_uplink(state, up.fcnt + 1, up.snr, up.adr, [{"cmd": n, **f} for n, f in answers])


def test_link_check_answer_has_the_margin_of_the_best_snr_and_the_gateway_count():
    out = mac.handle(EU, mac.new_state(cflist=True), {}, uplink(dr=5, snr=2.5, gateways=3,
                                                              commands=[("LinkCheckReq", {})]))
    assert [(c.name, c.fields) for c in out.answers] == [("LinkCheckAns", {"margin": 10, "gw_cnt": 3})]
    assert out.must_reply and out.requests == []
    # SF12 needs -20 dB: an SNR of -21 leaves no margin (never negative on air).
    out = mac.handle(EU, mac.new_state(cflist=True), {}, uplink(dr=0, snr=-21, commands=[("LinkCheckReq", {})]))
    assert out.answers[0].fields == {"margin": 0, "gw_cnt": 1}


def test_device_time_answer_is_the_gps_time_of_reception():
    when = 1_700_000_000.75  # 2023-11-14T22:13:20.75Z
    out = mac.handle(EU, mac.new_state(cflist=True), {}, uplink(commands=[("DeviceTimeReq", {})], now=when))
    assert out.answers[0].fields == {"gps_seconds": 1_700_000_000 - 315_964_800 + 18, "fraction": 192}
    assert mac.gps_seconds(315_964_800) == 0 and mac.gps_seconds(1_000_000_000) == 1_000_000_000 - 315_964_800 + 13


def full_history(snr: float, n: int = adr.HISTORY, start: int = 0):
    return [[start + i, snr] for i in range(n)]


def test_adr_waits_for_a_full_history_then_steps_rate_before_power():
    state = mac.new_state(cflist=True)
    state["history"] = full_history(10.0, adr.HISTORY - 2)
    out = mac.handle(EU, state, {}, uplink(fcnt=18, dr=0, snr=10.0, adr_bit=True))
    assert names(out.requests) == []  # 19 uplinks: not yet
    out = mac.handle(EU, out.state, {}, uplink(fcnt=19, dr=0, snr=10.0, adr_bit=True))
    # 10 - (-20) - 10 = 20 dB of room: 6 steps, 5 to DR5 (the EU868 ADR ceiling), 1 to TXPower 1.
    assert [(c.name, c.fields) for c in out.requests] == [("LinkADRReq", {
        "data_rate": 5, "tx_power": 1, "nb_trans": 1, "ch_mask_cntl": 0, "ch_mask": 0xFF})]
    assert state["history"] == full_history(10.0, adr.HISTORY - 2)  # handle() changes nothing it was given


# Best SNR per uplink of a device 3 km out, then of one in the same building (recorded series).
FAR = [-14.2, -12.8, -15.5, -13.0, -16.1, -12.2, -14.8, -13.3, -15.0, -14.4,
       -12.9, -13.7, -15.8, -14.1, -12.5, -13.9, -14.6, -15.2, -13.1, -14.0]
NEAR = [8.2, 9.5, 7.8, 9.0, 10.2, 8.8, 9.1, 7.5, 8.0, 9.8, 10.0, 8.5, 9.3, 9.9, 8.7, 7.9, 9.2, 8.4, 9.6, 8.1]


@pytest.mark.parametrize("series, dr, power, expected", [
    (FAR, 0, 0, (0, 0)),  # best -12.2, SF12 needs -20: -12.2 + 20 - 10 = -2.2 dB, power already at its maximum
    (FAR, 2, 0, (2, 0)),  # SF10 needs -15: -7.2 dB, nothing to raise
    (NEAR, 0, 0, (5, 1)),  # best 10.2: 20.2 dB = 6 steps, 5 to DR5 (the EU868 ceiling) and 1 of power
    (NEAR, 5, 0, (5, 2)),  # SF7 needs -7.5: 7.7 dB = 2 power steps
    (NEAR, 5, 6, (5, 7)),  # capped at the lowest power EU868 defines (TXPower 7)
    (FAR, 5, 4, (5, 0)),  # -14.7 dB at SF7: power back up, never a slower rate (the device backs off itself)
])
def test_adr_on_recorded_series(series, dr, power, expected):
    history = [[i, snr] for i, snr in enumerate(series)]
    got = adr.decide(regions.EU868, adr.LinkSettings(dr, power, 1), history, 10.0)
    assert (got.dr, got.tx_power, got.nb_trans) == (expected[0], expected[1], 1)


def test_adr_nb_trans_follows_frame_loss():
    lossy = [[i * 2, 5.0] for i in range(adr.HISTORY)]  # every other frame lost
    assert adr.decide(regions.EU868, adr.LinkSettings(5, 0, 1), lossy, 10.0).nb_trans == 3
    few = [[i, 5.0] for i in range(adr.HISTORY + 1) if i != 7]  # 1 in 21 lost
    assert adr.decide(regions.EU868, adr.LinkSettings(5, 0, 1), few, 10.0).nb_trans == 1


@given(st.sampled_from(regions.NAMES), st.data())
def test_adr_never_leaves_the_region_limits(name, data):
    region = regions.get_region(name)
    lo, hi = region.adr_drs
    uplink_drs = [r.index for r in region.data_rates if r is not None and r.uplink]
    dr = data.draw(st.sampled_from(uplink_drs))
    power = data.draw(st.integers(0, region.max_tx_power_index))
    snrs = data.draw(st.lists(st.floats(-30, 30, allow_nan=False), min_size=adr.HISTORY, max_size=adr.HISTORY))
    fcnts = sorted(data.draw(st.lists(st.integers(0, 200), min_size=adr.HISTORY, max_size=adr.HISTORY,
                                      unique=True)))
    margin = data.draw(st.floats(0, 30))
    got = adr.decide(region, adr.LinkSettings(dr, power, 1), [list(p) for p in zip(fcnts, snrs)], margin)
    assert 0 <= got.tx_power <= region.max_tx_power_index and 1 <= got.nb_trans <= 3
    if lo <= dr <= hi:
        assert lo <= got.dr <= hi and got.dr >= dr
    else:
        assert got.dr == dr
    assert region.data_rates[got.dr].uplink


def test_link_adr_answer_applies_and_clears_the_history():
    state = mac.new_state(cflist=True)
    state["history"] = full_history(10.0)
    out = mac.handle(EU, state, {}, uplink(fcnt=20, dr=0, snr=10.0, adr_bit=True))
    settle(state, uplink(fcnt=20, dr=0, snr=10.0, adr_bit=True), out.requests,
           [("LinkADRAns", {"power_ack": True, "data_rate_ack": True, "channel_mask_ack": True})])
    assert (state["dr"], state["tx_power"], state["nb_trans"]) == (5, 1, 1)
    assert state["history"] == [] and state["pending"] == [] and state["ch_mask_ok"]


def test_refused_or_unanswered_link_adr_backs_off():
    state = mac.new_state(cflist=True)
    state["history"] = full_history(10.0)
    up = uplink(fcnt=20, dr=0, snr=10.0, adr_bit=True)
    out = mac.handle(EU, state, {}, up)
    settle(state, up, out.requests, [("LinkADRAns", {"power_ack": True, "data_rate_ack": False,
                                                     "channel_mask_ack": True})])
    assert state["dr"] is None and state["wait"] == {"LinkADRReq": 2} and state["refused"]["LinkADRReq"]
    waits = []
    for fcnt in range(22, 26):
        out = mac.handle(EU, state, {}, uplink(fcnt=fcnt, dr=0, snr=10.0, adr_bit=True))
        waits.append("LinkADRReq" in names(out.requests))
        mac.apply_uplink(state, fcnt, 10.0, True, [])
    assert waits == [False, True, True, True]  # asked again once the wait is over
    # An ADRACKReq is answered whatever the wait: the device needs a downlink.
    state["wait"] = {"LinkADRReq": 8}
    out = mac.handle(EU, state, {}, uplink(fcnt=30, dr=0, snr=10.0, adr_bit=True, adr_ack_req=True))
    assert out.must_reply and "LinkADRReq" in names(out.requests)


def test_dev_status_on_schedule_and_the_answer_is_kept():
    ctx = mac.MacContext(regions.EU868, dev_status_interval=3600)
    state = mac.new_state(cflist=True)
    out = mac.handle(ctx, state, {}, uplink(fcnt=0))
    assert names(out.requests) == ["DevStatusReq"]
    settle(state, uplink(fcnt=0), out.requests, [("DevStatusAns", {"battery": 200, "margin": 12})])
    assert (state["battery"], state["margin"], state["status_at"]) == (200, 12, NOW)
    assert names(mac.handle(ctx, state, {}, uplink(fcnt=2, now=NOW + 3599)).requests) == []
    assert names(mac.handle(ctx, state, {}, uplink(fcnt=2, now=NOW + 3600)).requests) == ["DevStatusReq"]


def test_operator_settings_become_requests_until_acknowledged():
    state = mac.new_state(cflist=True)
    settings = {"rx1_dr_offset": 1, "rx2_dr": 3, "rx2_freq": None, "rx1_delay": 2, "max_duty_cycle": 4}
    out = mac.handle(EU, state, settings, uplink(fcnt=0))
    assert [(c.name, c.fields) for c in out.requests] == [
        ("RXParamSetupReq", {"rx1_dr_offset": 1, "rx2_data_rate": 3, "frequency": 869_525_000}),
        ("RXTimingSetupReq", {"delay": 2}), ("DutyCycleReq", {"max_duty_cycle": 4})]
    answers = [("RXParamSetupAns", {"rx1_dr_offset_ack": True, "rx2_data_rate_ack": True, "channel_ack": True}),
               ("RXTimingSetupAns", {}), ("DutyCycleAns", {})]
    settle(state, uplink(fcnt=0), out.requests, answers)
    assert (state["rx1_dr_offset"], state["rx2_dr"], state["rx2_freq"], state["rx1_delay"],
            state["max_duty_cycle"]) == (1, 3, 869_525_000, 2, 4)
    again = mac.handle(EU, state, settings, uplink(fcnt=2, commands=answers[:2]))
    assert again.requests == [] and again.must_reply  # the device repeats those answers until a downlink


def test_a_refused_setting_is_not_asked_again():
    state = mac.new_state(cflist=True)
    settings = {"rx2_dr": 7}
    out = mac.handle(EU, state, settings, uplink(fcnt=0))
    settle(state, uplink(fcnt=0), out.requests,
           [("RXParamSetupAns", {"rx1_dr_offset_ack": True, "rx2_data_rate_ack": False, "channel_ack": True})])
    state["wait"] = {}
    assert names(mac.handle(EU, state, settings, uplink(fcnt=2)).requests) == []
    assert names(mac.handle(EU, state, {"rx2_dr": 6}, uplink(fcnt=2)).requests) == ["RXParamSetupReq"]


def test_abp_devices_get_the_extra_channels_then_a_mask_that_covers_them():
    state = mac.new_state()  # no CFList
    out = mac.handle(EU, state, {}, uplink(fcnt=0))
    assert [c.fields["frequency"] for c in out.requests] == [867_100_000, 867_300_000, 867_500_000, 867_700_000,
                                                             867_900_000]
    assert mac.channel_mask_blocks(regions.EU868, 0, False) == [(0, 0b111)]
    settle(state, uplink(fcnt=0), out.requests,
           [("NewChannelAns", {"data_rate_range_ok": True, "channel_frequency_ok": True})] * 5)
    assert state["extra_channels"] and mac.handle(EU, state, {}, uplink(fcnt=2)).requests == []
    assert mac.channel_mask_blocks(regions.EU868, 0, True) == [(0, 0xFF)]


def test_fixed_channel_bands_get_the_sub_band_mask_once():
    us = mac.MacContext(regions.US915, sub_band=2)
    assert mac.channel_mask_blocks(regions.US915, 2, False) == [(7, 0x02), (0, 0xFF00)]
    assert mac.channel_mask_blocks(regions.AU915, 5, False) == [(7, 0x10), (2, 0x00FF)]
    assert mac.channel_mask_blocks(regions.US915, 0, False) == [(6, 0xFF)]
    assert mac.channel_mask_blocks(regions.CN470, 3, False) == [(0, 0), (1, 0xFF), (2, 0), (3, 0), (4, 0), (5, 0)]
    state = mac.new_state()
    out = mac.handle(us, state, {}, uplink(fcnt=0, dr=0))
    assert [(c.fields["ch_mask_cntl"], c.fields["ch_mask"], c.fields["data_rate"]) for c in out.requests] == \
        [(7, 0x02, 0), (0, 0xFF00, 0)]
    ok = {"power_ack": True, "data_rate_ack": True, "channel_mask_ack": True}
    settle(state, uplink(fcnt=0, dr=0), out.requests, [("LinkADRAns", ok), ("LinkADRAns", ok)])
    assert state["ch_mask_ok"] and mac.handle(us, state, {}, uplink(fcnt=2, dr=0)).requests == []


def test_pack_keeps_a_link_adr_block_whole():
    block = [MacCommand("LinkADRReq", {"data_rate": 0, "tx_power": 0, "ch_mask": 0, "ch_mask_cntl": c,
                                       "nb_trans": 1}) for c in (7, 0)]
    check = MacCommand("LinkCheckAns", {"margin": 1, "gw_cnt": 1})
    status = MacCommand("DevStatusReq", {})
    assert names(mac.pack([check, *block, status], 15)) == ["LinkCheckAns", "LinkADRReq", "LinkADRReq", "DevStatusReq"]
    assert names(mac.pack([check, *block, status], 12)) == ["LinkCheckAns", "DevStatusReq"]
    assert mac.pack([check], 2) == []

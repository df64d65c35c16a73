"""The Station codec and router_config without sockets: identifiers, uplinks rebuilt into the exact
PHYPayload, replies, and the SX1301 channel layout. Hypothesis for the parser."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from gatewayd.connectors.lorawan.station import codec
from gatewayd.connectors.lorawan.station.router_config import PlanError, router_config, sx1301_conf, _Channel
from gatewayd.connectors.lorawan import regions
from gatewayd.connectors.lorawan import frames as lorawan

from .station_sim import uplink_message


@pytest.mark.parametrize("value", ["b827:ebff:fe61:2a0d", "B8-27-EB-FF-FE-61-2A-0D", "b8:27:eb:ff:fe:61:2a:0d",
                                   "b827ebfffe612a0d", 0xB827EBFFFE612A0D])
def test_eui_spellings(value):
    assert codec.parse_eui(value) == 0xB827EBFFFE612A0D


@pytest.mark.parametrize("value,expected", [("::1", 1), ("1::", 1 << 48), ("::", 0), ("a::b", (0xA << 48) | 0xB)])
def test_id6_compression(value, expected):
    assert codec.parse_eui(value) == expected
    assert codec.parse_eui(codec.id6(expected)) == expected


@pytest.mark.parametrize("value", ["", "1:2:3:4:5", "1::2::3", "xyz", "12345:0:0:0", -1, 1 << 64, True, None, 1.5,
                                   "b827ebfffe612a0"])
def test_bad_euis(value):
    with pytest.raises(codec.StationError) as err:
        codec.parse_eui(value)
    assert err.value.code == "bad_eui"


def test_updf_is_rebuilt_into_the_exact_phypayload():
    phy = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")  # vector: DevAddr 49be7df1, FCnt 2, port 1
    message = uplink_message(phy, dr=5, freq=868_100_000)
    assert message["DevAddr"] == 0x49BE7DF1 and message["MIC"] == 0x0DFF112B
    up = codec.parse_message(json.dumps(message))
    assert isinstance(up, codec.Uplink) and up.phy == phy and up.msgtype == "updf"
    assert up.dr == 5 and up.freq == 868_100_000 and up.xtime == message["upinfo"]["xtime"]


def test_jreq_with_negative_mic_and_joineui_spelling():
    phy = bytes.fromhex("0039363463336913AA05693574323831330489C65B13F4")  # MIC's top bit set
    message = uplink_message(phy)
    assert message["MIC"] < 0
    message["JoinEUI"] = message.pop("JoinEui")
    up = codec.parse_message(json.dumps(message))
    assert up.phy == phy and lorawan.parse_phy(up.phy).dev_eui == "3331383274356905"


def test_propdf_carries_the_whole_frame():
    up = codec.parse_message(json.dumps(uplink_message(b"\xe0\x01\x02\x03")))
    assert up.msgtype == "propdf" and up.phy == b"\xe0\x01\x02\x03"


def test_other_messages():
    assert codec.parse_message('{"msgtype":"getxtime"}') == codec.Unknown("getxtime")
    assert codec.parse_message('{"msgtype":"timesync","txtime":12.5}') == codec.TimeSync(12.5)
    v = codec.parse_message('{"msgtype":"version","station":"2.0.6","protocol":2,"model":7}')
    assert v.station == "2.0.6" and v.protocol == 2 and v.model == ""
    d = codec.parse_message('{"msgtype":"dntxed","diid":3,"DevEui":"00-00-00-00-00-00-00-2A","xtime":9}')
    assert d.diid == 3 and d.dev_eui == "000000000000002a" and d.xtime == 9 and d.dr is None
    assert codec.parse_discovery('{"router":"::2a"}') == 42


@pytest.mark.parametrize("text,code", [
    ("[]", "bad_json"), ("{", "bad_json"), ('{"x":1}', "missing"), ('{"msgtype":5}', "missing"),
    ('{"msgtype":"timesync"}', "missing"), ('{"msgtype":"timesync","txtime":"1"}', "bad_field"),
    ('{"msgtype":"dntxed","diid":true}', "bad_field"),
    ('{"msgtype":"propdf","FRMPayload":"","upinfo":{}}', "bad_field"),
    ('{"msgtype":"propdf","FRMPayload":"zz","upinfo":{}}', "bad_field"),
    ('{"msgtype":"propdf","FRMPayload":"e0","upinfo":{}}', "missing"),
    ('{"msgtype":"propdf","FRMPayload":"e0","DR":0,"Freq":1}', "missing"),
    ('{"msgtype":"propdf","FRMPayload":"e0","DR":16,"Freq":1,"upinfo":{"xtime":1}}', "bad_field"),
])
def test_malformed_messages(text, code):
    with pytest.raises(codec.StationError) as err:
        codec.parse_message(text)
    assert err.value.code == code


def test_size_limit():
    with pytest.raises(codec.StationError) as err:
        codec.parse_message('{"msgtype":"x","pad":"' + "a" * 100 + '"}', limit=64)
    assert err.value.code == "too_big"


@given(mhdr=st.sampled_from([0x40, 0x80]), dev_addr=st.integers(0, 2**32 - 1), f_ctrl_bits=st.integers(0, 0xF0),
       f_cnt=st.integers(0, 0xFFFF), f_opts=st.binary(max_size=15), port=st.one_of(st.none(), st.integers(0, 255)),
       payload=st.binary(max_size=200), mic=st.binary(min_size=4, max_size=4))
def test_any_data_frame_round_trips(mhdr, dev_addr, f_ctrl_bits, f_cnt, f_opts, port, payload, mic):
    body = b"" if port is None else bytes((port,)) + payload
    phy = (bytes((mhdr,)) + dev_addr.to_bytes(4, "little") + bytes((f_ctrl_bits & 0xF0 | len(f_opts),))
           + f_cnt.to_bytes(2, "little") + f_opts + body + mic)
    assert codec.parse_message(json.dumps(uplink_message(phy))).phy == phy


@given(st.binary(min_size=23, max_size=23).map(lambda b: b"\x00" + b[1:]))
def test_any_join_request_round_trips(phy):
    assert codec.parse_message(json.dumps(uplink_message(phy))).phy == phy


_json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                            | st.text(max_size=20),
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=12)
_fields = ["msgtype", "MHdr", "DevAddr", "FCtrl", "FCnt", "FOpts", "FPort", "FRMPayload", "MIC", "DR", "Freq",
           "upinfo", "JoinEui", "DevEui", "DevNonce", "diid", "txtime", "xtime", "router"]


@given(st.dictionaries(st.sampled_from(_fields), _json_values | st.sampled_from(["updf", "jreq", "propdf",
                                                                                   "dntxed", "timesync", "version"])))
def test_hostile_messages_raise_only_station_errors(message):
    text = json.dumps(message)
    try:
        codec.parse_message(text)
    except codec.StationError:
        pass
    try:
        codec.parse_discovery(text)
    except codec.StationError:
        pass


@given(st.binary(max_size=300))
def test_hostile_bytes_raise_only_station_errors(data):
    try:
        codec.parse_message(data)
    except codec.StationError:
        pass


def test_dnmsg_fields():
    text = codec.dnmsg(dev_eui="00-11-22-33-44-55-66-77", diid=5, pdu=b"\x20\x01", rx_delay=1, xtime=123, rctx=2,
                       rx1=(5, 868_100_000), rx2=(0, 869_525_000), priority=0, mux_time=1.25)
    assert json.loads(text) == {"msgtype": "dnmsg", "DevEui": "00-11-22-33-44-55-66-77", "dC": 0, "diid": 5,
                                "pdu": "2001", "RxDelay": 1, "priority": 0, "xtime": 123, "rctx": 2, "RX1DR": 5,
                                "RX1Freq": 868_100_000, "RX2DR": 0, "RX2Freq": 869_525_000, "MuxTime": 1.25}
    only_rx2 = json.loads(codec.dnmsg(dev_eui="01-01-01-01-01-01-01-01", diid=6, pdu=b"", rx_delay=5, xtime=1, rctx=0,
                                      rx1=None, rx2=(0, 869_525_000), priority=0, mux_time=0.0))
    assert "RX1DR" not in only_rx2 and only_rx2["RX2Freq"] == 869_525_000


def test_gps_time():
    assert codec.gps_time_us(315_964_800.0) == 18_000_000
    assert json.loads(codec.timesync_reply(7.0, 315_964_801.5))["gpstime"] == 19_500_000


def _reachable(conf: dict) -> None:
    """Every enabled channel lies within its radio's receive bandwidth."""
    for name, channel in conf.items():
        if name.startswith("chan_") and channel.get("enable"):
            bandwidth = channel.get("bandwidth", 125_000)
            radio_bandwidth = 1_100_000 if bandwidth >= 500_000 else 925_000
            assert abs(channel["if"]) + bandwidth // 2 <= radio_bandwidth // 2, name


def test_eu868_router_config_layout():
    config = router_config(regions.EU868, max_eirp=14, mux_time=0.0)
    conf = config["sx1301_conf"][0]
    _reachable(conf)
    assert config["upchannels"][-2:] == [[868_300_000, 6, 6], [868_800_000, 7, 7]]
    assert conf["chan_FSK"]["enable"] and conf["radio_0"]["enable"] and conf["radio_1"]["enable"]


def test_channels_that_two_radios_cannot_hold_are_refused():
    far = [_Channel(f, 125_000, "multiSF", 0, 5) for f in (863_000_000, 866_000_000, 869_000_000)]
    with pytest.raises(PlanError):
        sx1301_conf(far)
    wide = [_Channel(f, 125_000, "multiSF", 0, 3) for f in (903_900_000, 904_100_000, 904_300_000, 904_500_000,
                                                                 904_700_000, 904_900_000, 905_100_000, 905_300_000)]
    conf = sx1301_conf(wide + [_Channel(904_600_000, 500_000, "std", 4, 4, 8)])
    _reachable(conf)


def _frequencies(config: dict) -> list[int]:
    conf = config["sx1301_conf"][0]
    radios = [conf["radio_0"]["freq"], conf["radio_1"]["freq"]]
    return sorted(radios[conf[name]["radio"]] + conf[name]["if"] for name in conf
                  if name.startswith("chan_multiSF") and conf[name]["enable"])


def test_us915_sub_band_2():
    config = router_config(regions.get_region("US915"), sub_band=2, max_eirp=20, mux_time=0.0)
    assert config["region"] == "US902" and config["freq_range"] == [902_000_000, 928_000_000]
    assert config["DRs"][4] == [8, 500, 0] and config["DRs"][8] == [12, 500, 1] and config["DRs"][5] == [-1, 0, 0]
    assert _frequencies(config) == [903_900_000 + 200_000 * n for n in range(8)]
    conf = config["sx1301_conf"][0]
    _reachable(conf)
    std = conf["chan_Lora_std"]
    assert [conf["radio_0"]["freq"], conf["radio_1"]["freq"]][std["radio"]] + std["if"] == 904_600_000
    assert std["bandwidth"] == 500_000 and std["spread_factor"] == 8 and not conf["chan_FSK"]["enable"]
    assert [904_600_000, 4, 4] in config["upchannels"]


def test_us915_without_a_sub_band_is_refused_with_a_hint():
    with pytest.raises(PlanError, match="sub_band"):
        router_config(regions.get_region("US915"), max_eirp=20, mux_time=0.0)


def test_as923_1_and_au915():
    as923 = router_config(regions.get_region("AS923-1"), max_eirp=14, mux_time=0.0)
    assert as923["region"] == "AS923-1"
    assert _frequencies(as923) == [922_200_000, 922_400_000, 922_600_000, 922_800_000, 923_000_000, 923_200_000,
                                   923_400_000]
    _reachable(as923["sx1301_conf"][0])
    au915 = router_config(regions.get_region("AU915"), sub_band=1, max_eirp=20, mux_time=0.0)
    assert au915["region"] == "AU915" and _frequencies(au915)[0] == 915_200_000
    _reachable(au915["sx1301_conf"][0])


def test_regions_without_a_station_name_are_refused():
    with pytest.raises(PlanError):
        router_config(regions.get_region("CN470"), sub_band=1, max_eirp=17, mux_time=0.0)


def test_dnmsg_windows_follow_the_chosen_window():
    import itertools
    from types import SimpleNamespace

    from gatewayd.connectors.lorawan.station.service import StationLink
    from gatewayd.connectors.lorawan.dedup import Copy
    from gatewayd.connectors.lorawan.downlink import Window

    service = SimpleNamespace(region=regions.EU868, diids=itertools.count(7))
    link = StationLink(service, "b827ebfffe612a0d", conn=None, remote=("192.0.2.1", 1))
    up = codec.parse_message(json.dumps(uplink_message(bytes.fromhex("40F17DBE4900020001954378762B11FF0D"),
                                                       xtime=5_000, rctx=3)))
    copy = Copy("b827ebfffe612a0d", None, 0.0, up)
    track = {"dev_eui": "0011223344556677"}
    rx2 = Window("RX2", 2.0, 869.525, 3)  # a device whose RX2 was moved to DR3
    tx, where = link.transmission(copy, Window("RX1", 1.0, 868.1, 5, rx2), b"\x60", track)
    msg = json.loads(tx.datagram)
    assert (msg["RxDelay"], msg["RX1DR"], msg["RX1Freq"], msg["RX2DR"], msg["RX2Freq"]) == (1, 5, 868_100_000, 3,
                                                                                               869_525_000)
    assert msg["diid"] == 7 == tx.token and msg["xtime"] == 5_000 and msg["rctx"] == 3 and tx.link is link
    assert where["window"] == "RX1" and where["via"] == "station"
    tx, _ = link.transmission(copy, Window("JA2", 6.0, 869.525, 0), b"\x20", {"dev_eui": "0000000000000000"})
    msg = json.loads(tx.datagram)
    assert msg["RxDelay"] == 5 and "RX1DR" not in msg and msg["RX2DR"] == 0
    assert msg["DevEui"] == codec.PLACEHOLDER_DEV_EUI

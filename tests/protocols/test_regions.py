"""Regional parameters, table-driven: the values below are read off the LoRaWAN Regional
Parameters (RP002-1.0.x) tables, not computed from our own tables."""

from __future__ import annotations

import pytest

from gatewayd import config
from gatewayd.connectors.lorawan import regions
from gatewayd.connectors.lorawan import frames as lorawan
from gatewayd.connectors.lorawan import crypto
from gatewayd.errors import ProtocolError

# (region, uplink MHz, uplink DR, RX1DROffset) -> (RX1 MHz, RX1 DR)
RX1_VECTORS = [
    ("EU868", 868.1, 5, 0, 868.1, 5),
    ("EU868", 867.7, 3, 2, 867.7, 1),
    ("EU868", 868.5, 1, 5, 868.5, 0),
    ("EU868", 868.3, 7, 1, 868.3, 6),
    ("EU433", 433.175, 4, 3, 433.175, 1),
    ("KR920", 922.1, 5, 0, 922.1, 5),
    ("KR920", 923.3, 2, 1, 923.3, 1),
    # US915: 125 kHz channel n at 902.3 + 0.2 n, 500 kHz channel 64 + n at 903.0 + 1.6 n,
    # downlink channel = uplink channel mod 8 at 923.3 + 0.6 m.
    ("US915", 902.3, 0, 0, 923.3, 10),
    ("US915", 903.9, 0, 0, 923.3, 10),  # channel 8
    ("US915", 904.1, 1, 1, 923.9, 10),  # channel 9
    ("US915", 905.3, 3, 0, 927.5, 13),  # channel 15
    ("US915", 914.9, 2, 3, 927.5, 9),  # channel 63
    ("US915", 903.0, 4, 0, 923.3, 13),  # channel 64
    ("US915", 904.6, 4, 2, 923.9, 12),  # channel 65
    ("US915", 914.2, 4, 3, 927.5, 11),  # channel 71
    ("US915", 902.5, 2, 0, 923.9, 12),
    ("US915", 902.7, 1, 3, 924.5, 8),
    # AU915: 125 kHz at 915.2 + 0.2 n, 500 kHz at 915.9 + 1.6 n, downlink as US915.
    ("AU915", 915.2, 0, 0, 923.3, 8),
    ("AU915", 916.8, 5, 0, 923.3, 13),  # channel 8
    ("AU915", 917.0, 5, 1, 923.9, 12),  # channel 9
    ("AU915", 917.4, 2, 1, 925.1, 9),  # channel 11
    ("AU915", 915.9, 6, 0, 923.3, 13),  # channel 64
    ("AU915", 917.5, 6, 5, 923.9, 9),  # channel 65
    ("AU915", 927.8, 3, 2, 927.5, 9),  # channel 63
    ("AU915", 918.0, 4, 4, 926.9, 8),  # channel 14 -> downlink channel 6
    # AS923 (dwell time limits): RX1 DR = min(5, max(2, DR - offset)), offsets 6/7 = +1/+2.
    ("AS923-1", 923.2, 5, 0, 923.2, 5),
    ("AS923-1", 923.4, 5, 3, 923.4, 2),
    ("AS923-1", 922.2, 2, 6, 922.2, 3),
    ("AS923-1", 922.2, 4, 7, 922.2, 5),
    ("AS923-2", 921.4, 3, 0, 921.4, 3),
    ("AS923-3", 916.6, 2, 0, 916.6, 2),
    ("AS923-4", 917.3, 5, 1, 917.3, 4),
    # IN865: offsets 0..7.
    ("IN865", 865.0625, 5, 0, 865.0625, 5),
    ("IN865", 865.4025, 2, 6, 865.4025, 3),
    ("IN865", 865.985, 5, 7, 865.985, 7),
    ("IN865", 865.985, 7, 1, 865.985, 5),
    ("IN865", 865.985, 4, 7, 865.985, 5),
    # CN470 (1.0.x plan): uplink 470.3 + 0.2 n, downlink 500.3 + 0.2 (n mod 48).
    ("CN470", 470.3, 5, 0, 500.3, 5),
    ("CN470", 479.9, 3, 1, 500.3, 2),  # channel 48 -> downlink channel 0
    ("CN470", 489.3, 0, 0, 509.7, 0),  # channel 95 -> downlink channel 47
    ("CN470", 471.1, 4, 5, 501.1, 0),  # channel 4
]


@pytest.mark.parametrize("region, freq, dr, offset, rx1_freq, rx1_dr", RX1_VECTORS)
def test_rx1_frequency_and_data_rate(region, freq, dr, offset, rx1_freq, rx1_dr):
    got_freq, got_dr = regions.rx1(region, freq, dr, offset)
    assert (round(got_freq, 4), got_dr) == (rx1_freq, rx1_dr)


# region -> (datr of each DR, None = RFU), RX2 (MHz, DR), max EIRP dBm, highest TXPower index
TABLES = {
    "EU868": (["SF12BW125", "SF11BW125", "SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125", "SF7BW250", 50000],
              (869.525, 0), 16, 7),
    "EU433": (["SF12BW125", "SF11BW125", "SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125", "SF7BW250", 50000],
              (434.665, 0), 12.15, 5),
    "KR920": (["SF12BW125", "SF11BW125", "SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125"], (921.9, 0), 14, 7),
    "IN865": (["SF12BW125", "SF11BW125", "SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125", None, 50000],
              (866.55, 2), 30, 10),
    "AS923-1": (["SF12BW125", "SF11BW125", "SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125", "SF7BW250", 50000],
                (923.2, 2), 16, 7),
    "AS923-2": (None, (921.4, 2), 16, 7),
    "AS923-3": (None, (916.6, 2), 16, 7),
    "AS923-4": (None, (917.3, 2), 16, 7),
    "US915": (["SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125", "SF8BW500", None, None, None,
               "SF12BW500", "SF11BW500", "SF10BW500", "SF9BW500", "SF8BW500", "SF7BW500"], (923.3, 8), 30, 14),
    "AU915": (["SF12BW125", "SF11BW125", "SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125", "SF8BW500", None,
               "SF12BW500", "SF11BW500", "SF10BW500", "SF9BW500", "SF8BW500", "SF7BW500"], (923.3, 8), 30, 14),
    "CN470": (["SF12BW125", "SF11BW125", "SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125"], (505.3, 0), 19.15, 7),
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_data_rates_rx2_and_power(name):
    datrs, rx2, eirp, max_index = TABLES[name]
    region = regions.get_region(name)
    if datrs is not None:
        assert [r.datr if r else None for r in region.data_rates] == datrs
    assert regions.rx2(name) == rx2 and (region.rx1_delay_s, region.rx2_delay_s) == (1, 2)
    assert (region.join_accept_delay1_s, region.join_accept_delay2_s) == (5, 6)
    assert region.max_eirp_dbm == eirp and region.tx_power_dbm(0) == eirp
    assert region.tx_power_dbm(max_index) == eirp - 2 * max_index
    with pytest.raises(ProtocolError):
        region.tx_power_dbm(max_index + 1)
    for rate in region.data_rates:
        if rate is not None and rate.modulation == "LORA":
            assert f"SF{rate.sf}BW{rate.bw_khz}" == rate.datr
    assert regions.data_rate(region, rx2[1]).downlink


def test_us915_and_au915_data_rate_directions():
    assert regions.dr_from_datr("US915", "SF8BW500") == 4  # the uplink one, not DR12
    assert regions.dr_from_datr("AU915", "SF8BW500") == 6
    with pytest.raises(ProtocolError) as e:
        regions.dr_from_datr("US915", "SF12BW125")
    assert e.value.code == "bad_datr"
    with pytest.raises(ProtocolError) as e:
        regions.rx1("US915", 923.3, 8)
    assert e.value.code == "bad_dr"
    with pytest.raises(ProtocolError) as e:
        regions.max_payload("US915", 6)
    assert "DR5, DR6, DR7 unused" in e.value.message
    assert [regions.max_payload("US915", dr) for dr in (0, 1, 2, 3, 4, 8, 9, 10, 13)] == \
        [11, 53, 125, 222, 222, 33, 109, 222, 222]


def test_us915_channels_and_sub_bands():
    us = regions.US915
    channels = us.uplink_channels()
    assert len(channels) == 72 and us.sub_bands == 8
    assert (channels[0].freq, channels[63].freq, channels[64].freq, channels[71].freq) == (902.3, 914.9, 903.0, 914.2)
    assert (channels[0].min_dr, channels[0].max_dr, channels[64].min_dr, channels[64].max_dr) == (0, 3, 4, 4)
    sb2 = us.uplink_channels(2)
    assert [c.index for c in sb2] == [8, 9, 10, 11, 12, 13, 14, 15, 65]
    assert [c.freq for c in sb2] == [903.9, 904.1, 904.3, 904.5, 904.7, 904.9, 905.1, 905.3, 904.6]
    assert us.channel_mask(2) == (0xFF << 8) | (1 << 65)
    with pytest.raises(ProtocolError) as e:
        us.uplink_channels(9)
    assert e.value.code == "bad_sub_band"
    assert regions.CN470.sub_bands == 12 and len(regions.CN470.uplink_channels(12)) == 8
    assert regions.EU868.sub_bands == 0


def test_cflist_of_each_kind():
    # Type 0: five frequencies in units of 100 Hz, 3 bytes little-endian each, then type 0.
    eu = regions.EU868.cflist()
    assert eu == bytes.fromhex("184f84 e85684 b85e84 886684 586e84 00".replace(" ", ""))
    assert len(eu) == lorawan.CFLIST_LEN
    # Type 1: ChMask0..4 (16 bits each, little-endian), 5 RFU bytes, type 1.
    assert regions.US915.cflist(2) == bytes.fromhex("00ff 0000 0000 0000 0200 0000000000 01".replace(" ", ""))
    assert regions.AU915.cflist(1) == bytes.fromhex("ff00 0000 0000 0000 0100 0000000000 01".replace(" ", ""))
    assert regions.US915.cflist(0) == bytes.fromhex("ffff ffff ffff ffff ff00 0000000000 01".replace(" ", ""))
    assert regions.CN470.cflist(3) is None  # 1.0.x CN470 devices take no CFList
    assert regions.IN865.cflist() is None  # no extra channels in the plan
    as2 = regions.get_region("AS923-2").cflist()
    assert int.from_bytes(as2[0:3], "little") == 9204000  # 922.2 - 1.8 MHz


def test_config_knows_every_region_and_its_sub_bands():
    assert set(config.REGION_NAMES) == set(regions.NAMES)
    for name in regions.NAMES:
        assert config.REGION_SUB_BANDS.get(name, 0) == regions.get_region(name).sub_bands
    config.from_mapping({"lorawan": {"region": "US915", "sub_band": 2}})
    with pytest.raises(config.ConfigError) as e:
        config.from_mapping({"lorawan": {"region": "EU868", "sub_band": 2}})
    assert "lorawan.sub_band" in str(e.value)
    with pytest.raises(config.ConfigError):
        config.from_mapping({"lorawan": {"region": "AU915", "sub_band": 9}})


@pytest.mark.parametrize("name", sorted(TABLES))
def test_largest_payload_per_dr_fits_a_frame(name):
    for rate in regions.get_region(name).data_rates:
        if rate is None or not rate.max_frm_payload:
            continue
        phy = lorawan.build_data_frame(lorawan.MType.UNCONFIRMED_DATA_DOWN, 1, 1, bytes(16), bytes(16), f_port=1,
                                       payload=bytes(rate.max_frm_payload))
        assert len(phy) == 1 + rate.max_mac_payload + 4 <= crypto.MAX_PHY_PAYLOAD

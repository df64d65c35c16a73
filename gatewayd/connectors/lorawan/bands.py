"""The bands gatewayd serves, as data from the LoRaWAN Regional Parameters (RP002-1.0.x).

Dynamic-channel bands (EU868, EU433, KR920, IN865, AS923-x) start devices on their default
channels and add the network's extra channels in the join-accept's CFList (type 0). Fixed-channel
bands (US915, AU915, CN470) number every channel; a sub-band is a block of 8 narrow channels (plus
the 500 kHz channel of the same number on US915/AU915), announced in the CFList (type 1, not on
CN470) and in LinkADRReq channel masks.

AS923 is modelled with the dwell-time limits on (400 ms), as devices start there: uplinks and
RX1 use DR2 and up, and payload sizes are those of the dwell-time table.
"""

from __future__ import annotations

from .band import CFLIST_CHANNEL_MASK, DataRate, Region

_RFU = None


def _eu_like_rates(n: tuple[int, ...], fsk: bool = True, wide: bool = True) -> tuple[DataRate | None, ...]:
    rates: list[DataRate | None] = [DataRate(dr, f"SF{12 - dr}BW125", n[dr]) for dr in range(6)]
    if wide or fsk:
        rates.append(DataRate(6, "SF7BW250", n[6]) if wide else _RFU)
    if fsk:
        rates.append(DataRate(7, 50000, n[7]))
    return tuple(rates)


def _offset_down(drs: int, offsets: int = 6) -> tuple[tuple[int, ...], ...]:
    """RX1 DR = max(uplink DR - RX1DROffset, 0)."""
    return tuple(tuple(max(dr - off, 0) for off in range(offsets)) for dr in range(drs))


def _as923_rx1(min_dr: int) -> tuple[tuple[int, ...], ...]:
    """RX1 DR = min(5, max(min DR, uplink DR - effective offset)); offsets 6 and 7 mean +1 and +2."""
    effective = (0, 1, 2, 3, 4, 5, -1, -2)
    return tuple(tuple(min(5, max(min_dr, dr - e)) for e in effective) for dr in range(8))


_EU_N = (51, 51, 51, 115, 222, 222, 222, 222)

EU868 = Region(
    name="EU868",
    data_rates=_eu_like_rates(_EU_N),
    default_channels=(868.1, 868.3, 868.5),
    extra_channels=(867.1, 867.3, 867.5, 867.7, 867.9),
    rx2_frequency=869.525,
    rx2_dr=0,
    rx1_dr_table=_offset_down(8),
    max_eirp_dbm=16,
    max_tx_power_index=7,
    # 14 dBm is within the limit of every EU868 downlink sub-band (RX2's allows more).
    downlink_tx_power_dbm=14,
    adr_drs=(0, 5),
)

EU433 = Region(
    name="EU433",
    data_rates=_eu_like_rates(_EU_N),
    default_channels=(433.175, 433.375, 433.575),
    rx2_frequency=434.665,
    rx2_dr=0,
    rx1_dr_table=_offset_down(8),
    max_eirp_dbm=12.15,
    max_tx_power_index=5,
    downlink_tx_power_dbm=10,
    adr_drs=(0, 5),
)

KR920 = Region(
    name="KR920",
    data_rates=_eu_like_rates((51, 51, 51, 115, 222, 222), fsk=False, wide=False),
    default_channels=(922.1, 922.3, 922.5),
    extra_channels=(922.7, 922.9, 923.1, 923.3),
    rx2_frequency=921.9,
    rx2_dr=0,
    rx1_dr_table=_offset_down(6),
    max_eirp_dbm=14,
    max_tx_power_index=7,
    downlink_tx_power_dbm=14,
    adr_drs=(0, 5),
)

IN865 = Region(
    name="IN865",
    data_rates=_eu_like_rates((51, 51, 51, 115, 222, 222, 0, 222), wide=False),
    default_channels=(865.0625, 865.4025, 865.985),
    rx2_frequency=866.55,
    rx2_dr=2,
    # Offsets 0..7; 6 and 7 raise the rate. The DR7 (FSK) row is the band's own.
    rx1_dr_table=(
        (0, 0, 0, 0, 0, 0, 1, 2),
        (1, 0, 0, 0, 0, 0, 2, 3),
        (2, 1, 0, 0, 0, 0, 3, 4),
        (3, 2, 1, 0, 0, 0, 4, 5),
        (4, 3, 2, 1, 0, 0, 5, 5),
        (5, 4, 3, 2, 1, 0, 5, 7),
        (),
        (7, 5, 5, 4, 3, 2, 7, 7),
    ),
    max_eirp_dbm=30,
    max_tx_power_index=10,
    downlink_tx_power_dbm=27,
    adr_drs=(0, 5),
)

# AS923 with dwell-time limits: DR0 and DR1 carry nothing, DR2 11 bytes.
_AS923_N = (0, 0, 11, 53, 125, 222, 222, 222)


def _as923(suffix: str, offset_mhz: float) -> Region:
    def shifted(f: float) -> float:
        return round(f + offset_mhz, 4)

    return Region(
        name=f"AS923-{suffix}",
        data_rates=_eu_like_rates(_AS923_N),
        default_channels=(shifted(923.2), shifted(923.4)),
        extra_channels=tuple(shifted(f) for f in (922.2, 922.4, 922.6, 922.8, 923.0)),
        rx2_frequency=shifted(923.2),
        rx2_dr=2,
        rx1_dr_table=_as923_rx1(min_dr=2),
        max_eirp_dbm=16,
        max_tx_power_index=7,
        downlink_tx_power_dbm=14,
        adr_drs=(2, 5),
        extra_channel_drs=(0, 5),
    )


AS923_1 = _as923("1", 0.0)
AS923_2 = _as923("2", -1.8)
AS923_3 = _as923("3", -6.6)
AS923_4 = _as923("4", -5.9)

# US915 and AU915 send downlinks at DR8..DR13, all 500 kHz.
_BW500_DOWNLINK = tuple(DataRate(8 + n, f"SF{12 - n}BW500", (33, 109, 222, 222, 222, 222)[n], uplink=False)
                        for n in range(6))

US915 = Region(
    name="US915",
    data_rates=(
        DataRate(0, "SF10BW125", 11, downlink=False),
        DataRate(1, "SF9BW125", 53, downlink=False),
        DataRate(2, "SF8BW125", 125, downlink=False),
        DataRate(3, "SF7BW125", 222, downlink=False),
        DataRate(4, "SF8BW500", 222, downlink=False),
        _RFU, _RFU, _RFU,
        *_BW500_DOWNLINK,
    ),
    default_channels=(),
    fixed_uplink=((0, 902.3, 0.2, 64, 0, 3), (64, 903.0, 1.6, 8, 4, 4)),
    fixed_downlink=(923.3, 0.6, 8),
    cflist_type=CFLIST_CHANNEL_MASK,
    rx2_frequency=923.3,
    rx2_dr=8,
    rx1_dr_table=(
        (10, 9, 8, 8),
        (11, 10, 9, 8),
        (12, 11, 10, 9),
        (13, 12, 11, 10),
        (13, 13, 12, 11),
    ),
    max_eirp_dbm=30,
    max_tx_power_index=14,
    downlink_tx_power_dbm=20,
    adr_drs=(0, 3),
)

AU915 = Region(
    name="AU915",
    data_rates=(
        DataRate(0, "SF12BW125", 51, downlink=False),
        DataRate(1, "SF11BW125", 51, downlink=False),
        DataRate(2, "SF10BW125", 51, downlink=False),
        DataRate(3, "SF9BW125", 115, downlink=False),
        DataRate(4, "SF8BW125", 222, downlink=False),
        DataRate(5, "SF7BW125", 222, downlink=False),
        DataRate(6, "SF8BW500", 222, downlink=False),
        _RFU,
        *_BW500_DOWNLINK,
    ),
    default_channels=(),
    fixed_uplink=((0, 915.2, 0.2, 64, 0, 5), (64, 915.9, 1.6, 8, 6, 6)),
    fixed_downlink=(923.3, 0.6, 8),
    cflist_type=CFLIST_CHANNEL_MASK,
    rx2_frequency=923.3,
    rx2_dr=8,
    rx1_dr_table=(
        (8, 8, 8, 8, 8, 8),
        (9, 8, 8, 8, 8, 8),
        (10, 9, 8, 8, 8, 8),
        (11, 10, 9, 8, 8, 8),
        (12, 11, 10, 9, 8, 8),
        (13, 12, 11, 10, 9, 8),
        (13, 13, 12, 11, 10, 9),
    ),
    max_eirp_dbm=30,
    max_tx_power_index=14,
    downlink_tx_power_dbm=20,
    adr_drs=(0, 5),
)

# CN470-510 as LoRaWAN 1.0.x devices know it: 96 uplink channels, 48 downlink channels (RX1
# channel = uplink channel mod 48), twelve sub-bands of 8; join-accepts carry no CFList.
CN470 = Region(
    name="CN470",
    data_rates=_eu_like_rates((51, 51, 51, 115, 222, 222), fsk=False, wide=False),
    default_channels=(),
    fixed_uplink=((0, 470.3, 0.2, 96, 0, 5),),
    fixed_downlink=(500.3, 0.2, 48),
    cflist_type=None,
    rx2_frequency=505.3,
    rx2_dr=0,
    rx1_dr_table=_offset_down(6),
    max_eirp_dbm=19.15,
    max_tx_power_index=7,
    downlink_tx_power_dbm=17,
    adr_drs=(0, 5),
)

ALL = (EU868, US915, AU915, AS923_1, AS923_2, AS923_3, AS923_4, IN865, KR920, EU433, CN470)

"""LoRaWAN regional parameters as data: one frozen `Region` per band, looked up in `REGIONS`.

Only EU868 is filled in. Another band (e.g. US915) is one more `Region` value: its data-rate
table (with `uplink`/`downlink` flags, since US915 uses different rates per direction), its RX1
data-rate table and its RX1 frequency rule (a function of the uplink frequency).

Payload sizes are the EU868 "repeater compatible" limits: N is the largest FRMPayload when FOpts
is empty, M = N + 8 the largest MACPayload (FHDR of 7 bytes without FOpts, plus FPort).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...errors import ProtocolError

FHDR_AND_FPORT_LEN = 8  # DevAddr(4) + FCtrl(1) + FCnt(2) + FPort(1), no FOpts


@dataclass(frozen=True)
class DataRate:
    index: int
    datr: str | int  # as the packet forwarder writes it: "SF7BW125" (LoRa) or 50000 (FSK bit/s)
    max_frm_payload: int  # N
    uplink: bool = True
    downlink: bool = True

    @property
    def modulation(self) -> str:
        return "FSK" if isinstance(self.datr, int) else "LORA"

    @property
    def max_mac_payload(self) -> int:  # M
        return self.max_frm_payload + FHDR_AND_FPORT_LEN


@dataclass(frozen=True)
class Region:
    name: str
    data_rates: tuple[DataRate, ...]
    default_channels: tuple[float, ...]  # MHz, the channels every device knows after joining
    rx1_delay_s: int
    rx2_frequency: float  # MHz
    rx2_dr: int
    join_accept_delay1_s: int
    join_accept_delay2_s: int
    rx1_dr_table: tuple[tuple[int, ...], ...]  # [uplink DR][RX1DROffset] -> RX1 DR
    rx1_frequency: Callable[[float], float]  # uplink MHz -> RX1 MHz
    downlink_tx_power_dbm: int
    coding_rate: str = "4/5"

    @property
    def rx2_delay_s(self) -> int:
        return self.rx1_delay_s + 1


def _same_frequency(uplink_freq: float) -> float:
    return uplink_freq


_EU868_DATA_RATES = (
    DataRate(0, "SF12BW125", 51),
    DataRate(1, "SF11BW125", 51),
    DataRate(2, "SF10BW125", 51),
    DataRate(3, "SF9BW125", 115),
    DataRate(4, "SF8BW125", 222),
    DataRate(5, "SF7BW125", 222),
    DataRate(6, "SF7BW250", 222),
    DataRate(7, 50000, 222),
)

EU868 = Region(
    name="EU868",
    data_rates=_EU868_DATA_RATES,
    default_channels=(868.1, 868.3, 868.5),
    rx1_delay_s=1,
    rx2_frequency=869.525,
    rx2_dr=0,
    join_accept_delay1_s=5,
    join_accept_delay2_s=6,
    # RX1 DR = max(uplink DR - RX1DROffset, 0), offsets 0..5.
    rx1_dr_table=tuple(tuple(max(dr - off, 0) for off in range(6)) for dr in range(8)),
    rx1_frequency=_same_frequency,
    # 14 dBm is within the limit of every EU868 downlink sub-band (RX2's allows more).
    downlink_tx_power_dbm=14,
)

REGIONS: dict[str, Region] = {EU868.name: EU868}


def get_region(region: Region | str) -> Region:
    if isinstance(region, Region):
        return region
    try:
        return REGIONS[str(region).upper()]
    except KeyError:
        known = ", ".join(sorted(REGIONS))
        raise ProtocolError("bad_region", f"unknown region {region!r}; known: {known}") from None


def data_rate(region: Region | str, dr: int) -> DataRate:
    r = get_region(region)
    if isinstance(dr, bool) or not isinstance(dr, int) or not 0 <= dr < len(r.data_rates):
        raise ProtocolError(
            "bad_dr", f"{r.name} has data rates DR0..DR{len(r.data_rates) - 1}, got {dr!r}"
        )
    return r.data_rates[dr]


def dr_from_datr(region: Region | str, datr: str | int) -> int:
    """Uplink DR index for a packet forwarder `datr` ("SF7BW125", any case; or 50000 for FSK)."""
    r = get_region(region)
    wanted = datr.upper() if isinstance(datr, str) else datr
    for rate in r.data_rates:
        if rate.uplink and type(rate.datr) is type(wanted) and rate.datr == wanted:
            return rate.index
    raise ProtocolError("bad_datr", f"{datr!r} is not an uplink data rate of {r.name}")


def max_payload(region: Region | str, dr: int) -> int:
    """Largest FRMPayload (N) at this DR when FOpts is empty; subtract the FOpts length if any."""
    return data_rate(region, dr).max_frm_payload


def rx1(
    region: Region | str, uplink_freq: float, uplink_dr: int, rx1_dr_offset: int = 0
) -> tuple[float, int]:
    """(frequency MHz, DR) of the first receive window after an uplink."""
    r = get_region(region)
    data_rate(r, uplink_dr)
    offsets = r.rx1_dr_table[uplink_dr]
    if isinstance(rx1_dr_offset, bool) or not isinstance(rx1_dr_offset, int) or not (
        0 <= rx1_dr_offset < len(offsets)
    ):
        raise ProtocolError(
            "bad_dr", f"{r.name} RX1DROffset must be 0..{len(offsets) - 1}, got {rx1_dr_offset!r}"
        )
    return r.rx1_frequency(uplink_freq), offsets[rx1_dr_offset]


def rx2(region: Region | str) -> tuple[float, int]:
    """(frequency MHz, DR) of the second receive window (default settings)."""
    r = get_region(region)
    return r.rx2_frequency, r.rx2_dr

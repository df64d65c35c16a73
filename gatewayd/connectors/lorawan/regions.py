"""LoRaWAN regional parameters: look a band up by name and ask it about data rates and windows.

The bands are data (`bands.py`, shaped by `band.py`). What other parts need:
- `get_region(name)`: a `Region` with `data_rates` (DR index -> `DataRate` with `datr`, `sf`,
  `bw_khz`, `max_frm_payload`, `uplink`/`downlink`), `uplink_channels(sub_band)` (`Channel`:
  index, freq, min_dr, max_dr), `rx2_frequency`/`rx2_dr`, `max_eirp_dbm`, `tx_power_dbm(index)`,
  `cflist(sub_band)` and `channel_mask(sub_band)`;
- `rx1(region, uplink_freq, uplink_dr, offset)` and `rx2(region)`: (MHz, DR) of the windows;
- `dr_from_datr`, `data_rate`, `max_payload`.
"""

from __future__ import annotations

from ...errors import ProtocolError
from .band import Channel, DataRate, Region
from .bands import ALL, AS923_1, AU915, CN470, EU433, EU868, IN865, KR920, US915

__all__ = ["Channel", "DataRate", "Region", "REGIONS", "EU868", "US915", "AU915", "AS923_1", "IN865", "KR920",
           "EU433", "CN470", "get_region", "data_rate", "dr_from_datr", "max_payload", "rx1", "rx2"]

REGIONS: dict[str, Region] = {r.name: r for r in ALL}
REGIONS["AS923"] = AS923_1  # the name devices of the first AS923 plan often go by
NAMES = tuple(r.name for r in ALL)


def get_region(region: Region | str) -> Region:
    if isinstance(region, Region):
        return region
    try:
        return REGIONS[str(region).upper()]
    except KeyError:
        known = ", ".join(NAMES)
        raise ProtocolError("bad_region", f"unknown region {region!r}; known: {known}") from None


def data_rate(region: Region | str, dr: int) -> DataRate:
    r = get_region(region)
    rate = r.data_rates[dr] if isinstance(dr, int) and not isinstance(dr, bool) and 0 <= dr < len(r.data_rates) \
        else None
    if rate is None:
        unused = [str(i) for i, x in enumerate(r.data_rates) if x is None]
        more = f" (DR{', DR'.join(unused)} unused)" if unused else ""
        raise ProtocolError("bad_dr", f"{r.name} has data rates DR0..DR{len(r.data_rates) - 1}{more}, got {dr!r}")
    return rate


# (region name, datr as the forwarder spelled it) -> uplink DR, for the spellings the tables use:
# every uplink asks, and the answers are a few per region.
_UPLINK_DRS: dict[tuple[str, str | int], int] = {}


def dr_from_datr(region: Region | str, datr: str | int) -> int:
    """Uplink DR index for a packet forwarder `datr` ("SF7BW125", any case; or 50000 for FSK)."""
    r = get_region(region)
    if type(datr) is str or type(datr) is int:
        found = _UPLINK_DRS.get((r.name, datr))
        if found is not None:
            return found
    wanted = datr.upper() if isinstance(datr, str) else datr
    for rate in r.data_rates:
        if rate is not None and rate.uplink and type(rate.datr) is type(wanted) and rate.datr == wanted:
            if wanted == datr:
                _UPLINK_DRS[(r.name, datr)] = rate.index
            return rate.index
    raise ProtocolError("bad_datr", f"{datr!r} is not an uplink data rate of {r.name}")


def max_payload(region: Region | str, dr: int) -> int:
    """Largest FRMPayload (N) at this DR when FOpts is empty; subtract the FOpts length if any."""
    return data_rate(region, dr).max_frm_payload


def rx1(region: Region | str, uplink_freq: float, uplink_dr: int, rx1_dr_offset: int = 0) -> tuple[float, int]:
    """(frequency MHz, DR) of the first receive window after an uplink."""
    r = get_region(region)
    if not data_rate(r, uplink_dr).uplink:
        raise ProtocolError("bad_dr", f"DR{uplink_dr} is not an uplink data rate of {r.name}")
    offsets = r.rx1_dr_table[uplink_dr] if uplink_dr < len(r.rx1_dr_table) else ()
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

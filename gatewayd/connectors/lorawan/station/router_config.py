"""`router_config`: the region, data rates and channel plan a station must listen with. Pure.

Built from the region module's data (data-rate table, default channels, uplink data rates) and,
per region, what a gateway needs beyond it: the Station region name, the allowed band, and the
channels of the common 8-channel plan (EU868: the three default channels plus 867.1-867.9 MHz,
SF7BW250 on 868.3 MHz and FSK on 868.8 MHz).

The channels are laid out on the SX1301's two radios: every channel must sit within its radio's
receive bandwidth (925 kHz, 1100 kHz for 500 kHz channels), so a radio's centre frequency is
chosen inside the range all its channels allow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ....protocols import regions


@dataclass(frozen=True)
class GatewayPlan:
    station_region: str  # the name Station knows the region by
    freq_range: tuple[int, int]  # Hz
    extra_channels: tuple[float, ...] = ()  # MHz, multi-SF 125 kHz, besides the region's defaults
    lora_std: float | None = None  # MHz: the single-SF channel (the region's fastest LoRa uplink rate)
    fsk: float | None = None  # MHz


PLANS: dict[str, GatewayPlan] = {
    "EU868": GatewayPlan("EU863", (863_000_000, 870_000_000), (867.1, 867.3, 867.5, 867.7, 867.9), 868.3, 868.8),
}

MULTI_SF_SLOTS = 8
_DATR = re.compile(r"SF(\d+)BW(\d+)")


class PlanError(ValueError):
    pass


def supported(region: regions.Region) -> bool:
    return region.name in PLANS


@dataclass(frozen=True)
class _Channel:
    hz: int
    bandwidth: int  # Hz
    kind: str  # multiSF | std | fsk
    min_dr: int
    max_dr: int
    sf: int = 0

    @property
    def reach(self) -> int:
        """How far the radio's centre may lie from this channel (SX1301 receive bandwidth)."""
        radio_bandwidth = 1_100_000 if self.bandwidth >= 500_000 else 925_000
        return (radio_bandwidth - self.bandwidth) // 2


def _sf_bw(rate: regions.DataRate) -> tuple[int, int]:
    if isinstance(rate.datr, int):
        return 0, 0  # FSK
    match = _DATR.fullmatch(rate.datr)
    if match is None:
        raise PlanError(f"data rate {rate.datr!r} is neither LoRa nor FSK")
    return int(match.group(1)), int(match.group(2))


def data_rates(region: regions.Region) -> list[list[int]]:
    """16 x [SF, bandwidth kHz, downlink only]; SF 0 = FSK, -1 = unused."""
    out = []
    for index in range(16):
        rate = region.data_rates[index] if index < len(region.data_rates) else None
        if rate is None or not (rate.uplink or rate.downlink):
            out.append([-1, 0, 0])
            continue
        sf, bw = _sf_bw(rate)
        out.append([sf, bw, 0 if rate.uplink else 1])
    return out


def _channels(region: regions.Region, plan: GatewayPlan) -> list[_Channel]:
    uplink_lora = [(r.index, *_sf_bw(r)) for r in region.data_rates if r.uplink and not isinstance(r.datr, int)]
    multi = [dr for dr, sf, bw in uplink_lora if bw == 125]
    channels = [_Channel(round(f * 1e6), 125_000, "multiSF", min(multi), max(multi))
                for f in sorted(set(region.default_channels + plan.extra_channels))]
    if len(channels) > MULTI_SF_SLOTS:
        raise PlanError(f"{len(channels)} multi-SF channels; an SX1301 has {MULTI_SF_SLOTS}")
    if plan.lora_std is not None:
        dr, sf, bw = max((x for x in uplink_lora if x[2] > 125), key=lambda x: x[0])
        channels.append(_Channel(round(plan.lora_std * 1e6), bw * 1000, "std", dr, dr, sf))
    if plan.fsk is not None:
        fsk = [r.index for r in region.data_rates if r.uplink and isinstance(r.datr, int)]
        channels.append(_Channel(round(plan.fsk * 1e6), 125_000, "fsk", fsk[0], fsk[0]))
    return channels


def _place(channels: list[_Channel]) -> tuple[list[int], dict[_Channel, int]]:
    """Radio centre frequencies and the radio of each channel (at most two radios)."""
    ranges: list[list[int]] = []  # per radio: [lowest, highest] allowed centre
    radio_of: dict[_Channel, int] = {}
    for channel in channels:
        lo, hi = channel.hz - channel.reach, channel.hz + channel.reach
        for i, (rlo, rhi) in enumerate(ranges):
            if max(lo, rlo) <= min(hi, rhi):
                ranges[i] = [max(lo, rlo), min(hi, rhi)]
                radio_of[channel] = i
                break
        else:
            if len(ranges) == 2:
                raise PlanError(f"channel {channel.hz / 1e6:g} MHz fits neither radio")
            ranges.append([lo, hi])
            radio_of[channel] = len(ranges) - 1
    centres = [round((lo + hi) / 2_000) * 1000 for lo, hi in ranges]
    return centres, radio_of


def sx1301_conf(channels: list[_Channel]) -> dict[str, Any]:
    centres, radio_of = _place(channels)
    conf: dict[str, Any] = {}
    for i in range(2):
        conf[f"radio_{i}"] = {"enable": i < len(centres), "freq": centres[i] if i < len(centres) else 0}
    multi = [c for c in channels if c.kind == "multiSF"]
    for slot in range(MULTI_SF_SLOTS):
        if slot < len(multi):
            c = multi[slot]
            radio = radio_of[c]
            conf[f"chan_multiSF_{slot}"] = {"enable": True, "radio": radio, "if": c.hz - centres[radio]}
        else:
            conf[f"chan_multiSF_{slot}"] = {"enable": False, "radio": 0, "if": 0}
    std = next((c for c in channels if c.kind == "std"), None)
    if std is not None:
        conf["chan_Lora_std"] = {"enable": True, "radio": radio_of[std], "if": std.hz - centres[radio_of[std]],
                                 "bandwidth": std.bandwidth, "spread_factor": std.sf}
    else:
        conf["chan_Lora_std"] = {"enable": False}
    fsk = next((c for c in channels if c.kind == "fsk"), None)
    if fsk is not None:
        conf["chan_FSK"] = {"enable": True, "radio": radio_of[fsk], "if": fsk.hz - centres[radio_of[fsk]]}
    else:
        conf["chan_FSK"] = {"enable": False}
    return conf


def router_config(region: regions.Region, *, max_eirp: float, mux_time: float) -> dict[str, Any]:
    """The `router_config` message for `region` (no NetID or JoinEUI filter: every frame comes up)."""
    plan = PLANS.get(region.name)
    if plan is None:
        raise PlanError(f"no Station channel plan for region {region.name}")
    channels = _channels(region, plan)
    return {
        "msgtype": "router_config",
        "NetID": None,
        "JoinEui": None,
        "region": plan.station_region,
        "hwspec": "sx1301/1",
        "freq_range": list(plan.freq_range),
        "DRs": data_rates(region),
        "upchannels": [[c.hz, c.min_dr, c.max_dr] for c in channels],
        "sx1301_conf": [sx1301_conf(channels)],
        "max_eirp": max_eirp,
        "nocca": False,
        "nodc": False,
        "nodwell": False,
        "MuxTime": mux_time,
    }

"""`router_config`: the region, data rates and channel plan a station must listen with. Pure.

Built from the region's data: its data-rate table and the uplink channels in use
(`lorawan.sub_band` for US915/AU915), plus per region what only a gateway needs: the name Station
knows the region by, the band's limits, and the extra single-SF (250 kHz) and FSK channels of the
common 8-channel plans (EU868: SF7BW250 on 868.3 MHz and FSK on 868.8 MHz).

The channels are laid out on the SX1301's two radios: every channel must sit within its radio's
receive bandwidth (925 kHz, 1100 kHz for 500 kHz channels), so a radio's centre frequency is
chosen inside the range all its channels allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import regions


@dataclass(frozen=True)
class GatewayPlan:
    station_region: str  # the name Station knows the region by
    freq_range: tuple[int, int]  # Hz
    lora_std: float | None = None  # MHz: a single-SF channel at the band's 250 kHz uplink rate
    fsk: float | None = None  # MHz


PLANS: dict[str, GatewayPlan] = {
    "EU868": GatewayPlan("EU863", (863_000_000, 870_000_000), lora_std=868.3, fsk=868.8),
    "US915": GatewayPlan("US902", (902_000_000, 928_000_000)),
    "AU915": GatewayPlan("AU915", (915_000_000, 928_000_000)),
    "AS923-1": GatewayPlan("AS923-1", (915_000_000, 928_000_000), lora_std=922.1, fsk=921.8),
}

MULTI_SF_SLOTS = 8


class PlanError(ValueError):
    pass


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


def data_rates(region: regions.Region) -> list[list[int]]:
    """16 x [SF, bandwidth kHz, downlink only]; SF 0 = FSK, -1 = unused."""
    out = []
    for index in range(16):
        rate = region.data_rates[index] if index < len(region.data_rates) else None
        if rate is None or not (rate.uplink or rate.downlink):
            out.append([-1, 0, 0])
        elif rate.sf is None:
            out.append([0, 0, 0 if rate.uplink else 1])
        else:
            out.append([rate.sf, rate.bw_khz, 0 if rate.uplink else 1])
    return out


def _channels(region: regions.Region, sub_band: int, plan: GatewayPlan) -> list[_Channel]:
    """The region's uplink channels as multi-SF (125 kHz) or single-SF ones, plus the plan's extras."""
    rates = region.data_rates
    multi: list[_Channel] = []
    single: list[_Channel] = []
    for channel in region.uplink_channels(sub_band):
        lora = [r for r in rates[channel.min_dr:channel.max_dr + 1] if r is not None and r.sf is not None]
        hz = round(channel.freq * 1e6)
        if lora and all(r.bw_khz == 125 for r in lora):
            multi.append(_Channel(hz, 125_000, "multiSF", channel.min_dr, channel.max_dr))
        elif len(lora) == 1:
            single.append(_Channel(hz, lora[0].bw_khz * 1000, "std", channel.min_dr, channel.max_dr, lora[0].sf))
        else:
            raise PlanError(f"channel {channel.freq:g} MHz mixes bandwidths")
    if plan.lora_std is not None:
        wide = [r for r in rates if r is not None and r.uplink and r.sf is not None and r.bw_khz == 250]
        single.append(_Channel(round(plan.lora_std * 1e6), 250_000, "std", wide[0].index, wide[0].index, wide[0].sf))
    if len(multi) > MULTI_SF_SLOTS or len(single) > 1:
        hint = " (choose one with lorawan.sub_band)" if region.sub_bands and not sub_band else ""
        raise PlanError(f"{len(multi)} multi-SF and {len(single)} single-SF channels; one SX1301 listens on "
                        f"{MULTI_SF_SLOTS} and 1{hint}")
    channels = sorted(multi, key=lambda c: c.hz) + single
    if plan.fsk is not None:
        fsk = [r.index for r in rates if r is not None and r.uplink and r.sf is None]
        channels.append(_Channel(round(plan.fsk * 1e6), 125_000, "fsk", fsk[0], fsk[0]))
    return channels


def _centre_range(channels: list[_Channel]) -> tuple[int, int] | None:
    """The centre frequencies one radio may take to hear all `channels` (None: there are none)."""
    lo = max((c.hz - c.reach for c in channels), default=0)
    hi = min((c.hz + c.reach for c in channels), default=0)
    return (lo, hi) if lo <= hi else None


def _place(channels: list[_Channel]) -> tuple[list[int], dict[_Channel, int]]:
    """Radio centre frequencies and the radio of each channel: the channels sorted by frequency,
    the lower ones on radio 0 and the rest on radio 1, at the first split both radios can hold."""
    ordered = sorted(channels, key=lambda c: c.hz)
    for split in range(len(ordered), -1, -1):
        groups = [g for g in (ordered[:split], ordered[split:]) if g]
        ranges = [_centre_range(g) for g in groups]
        if all(r is not None for r in ranges):
            centres = [round((lo + hi) / 2_000) * 1000 for lo, hi in ranges]
            return centres, {c: i for i, g in enumerate(groups) for c in g}
    raise PlanError("the channels span more than two radios can hear: "
                    + ", ".join(f"{c.hz / 1e6:g}" for c in ordered) + " MHz")


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


def router_config(region: regions.Region, *, sub_band: int = 0, max_eirp: float, mux_time: float) -> dict[str, Any]:
    """The `router_config` message for `region` (no NetID or JoinEUI filter: every frame comes up)."""
    plan = PLANS.get(region.name)
    if plan is None:
        raise PlanError(f"no Station region for {region.name} (Station is supported in {', '.join(PLANS)})")
    channels = _channels(region, sub_band, plan)
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

"""The shape of a LoRaWAN band (regional parameters): data rates, channels, receive windows, power.

A `Region` is pure data plus the few rules that differ between bands (RX1 frequency and data
rate, the CFList a join-accept carries, the channel mask of a sub-band). The values themselves
are in `bands.py`; lookups by name in `regions.py`.

Payload sizes are the "repeater compatible" limits: N is the largest FRMPayload when FOpts is
empty, M = N + 8 the largest MACPayload (FHDR of 7 bytes without FOpts, plus FPort).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from ...errors import ProtocolError

FHDR_AND_FPORT_LEN = 8  # DevAddr(4) + FCtrl(1) + FCnt(2) + FPort(1), no FOpts
CFLIST_FREQUENCIES = 0  # CFListType 0: up to five extra channel frequencies (dynamic-channel bands)
CFLIST_CHANNEL_MASK = 1  # CFListType 1: the channel mask of a fixed-channel band
_LORA_DATR = re.compile(r"SF(\d+)BW(\d+)")
_FREQ_TOLERANCE = 0.0005  # MHz: forwarders print frequencies as decimal MHz


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

    @property
    def sf(self) -> int | None:
        """LoRa spreading factor (7..12), None for FSK."""
        match = _LORA_DATR.fullmatch(self.datr) if isinstance(self.datr, str) else None
        return int(match.group(1)) if match else None

    @property
    def bw_khz(self) -> int | None:
        """LoRa bandwidth in kHz (125, 250, 500), None for FSK."""
        match = _LORA_DATR.fullmatch(self.datr) if isinstance(self.datr, str) else None
        return int(match.group(2)) if match else None

    @property
    def bit_rate(self) -> int | None:
        """FSK bit rate, None for LoRa."""
        return self.datr if isinstance(self.datr, int) else None


@dataclass(frozen=True)
class Channel:
    """An uplink channel: its index in the band's channel numbering, frequency and DR range."""

    index: int
    freq: float  # MHz
    min_dr: int
    max_dr: int


@dataclass(frozen=True)
class Region:
    name: str
    data_rates: tuple[DataRate | None, ...]  # position = DR index; None = RFU
    # Dynamic-channel bands: the channels every device knows after joining, then the ones the
    # network adds in the CFList. Fixed-channel bands: every uplink channel, numbered as in the band.
    default_channels: tuple[float, ...]
    rx2_frequency: float  # MHz
    rx2_dr: int
    rx1_dr_table: tuple[tuple[int, ...], ...]  # [uplink DR][RX1DROffset] -> RX1 DR (-1: not allowed)
    max_eirp_dbm: float  # the device's default maximum EIRP; TXPower n = max_eirp - 2n dB
    max_tx_power_index: int  # the highest TXPower index the band defines
    downlink_tx_power_dbm: int  # what gatewayd asks its gateways for unless configured otherwise
    adr_drs: tuple[int, int]  # (lowest, highest) uplink DR the ADR engine may choose
    extra_channels: tuple[float, ...] = ()  # dynamic bands: the network's channels beyond the defaults
    extra_channel_drs: tuple[int, int] = (0, 5)
    # Fixed-channel bands: uplink channels (index, first MHz, step MHz, count, min DR, max DR)
    # and downlink channels (first MHz, step MHz, count); RX1 channel = uplink channel mod count.
    fixed_uplink: tuple[tuple[int, float, float, int, int, int], ...] = ()
    fixed_downlink: tuple[float, float, int] | None = None
    channels_per_sub_band: int = 8
    cflist_type: int | None = CFLIST_FREQUENCIES
    rx1_delay_s: int = 1
    join_accept_delay1_s: int = 5
    join_accept_delay2_s: int = 6
    coding_rate: str = "4/5"
    notes: tuple[str, ...] = field(default=(), compare=False)

    # -- shape -------------------------------------------------------------------------------------
    @property
    def rx2_delay_s(self) -> int:
        return self.rx1_delay_s + 1

    @property
    def fixed_channels(self) -> bool:
        """True for channel-mask bands (US915, AU915, CN470): every channel is known in advance."""
        return bool(self.fixed_uplink)

    @cached_property
    def uplink_channel_list(self) -> tuple[Channel, ...]:
        """Every uplink channel of a fixed band; the default then extra channels of a dynamic one."""
        if self.fixed_channels:
            out = []
            for first_index, first, step, count, min_dr, max_dr in self.fixed_uplink:
                out += [Channel(first_index + n, round(first + step * n, 4), min_dr, max_dr) for n in range(count)]
            return tuple(out)
        lo, hi = self.extra_channel_drs
        return tuple(Channel(n, f, lo, hi) for n, f in enumerate(self.default_channels + self.extra_channels))

    @property
    def sub_bands(self) -> int:
        """How many sub-bands `lorawan.sub_band` may choose from (0 for dynamic-channel bands)."""
        if not self.fixed_channels:
            return 0
        narrow = self.fixed_uplink[0][3]
        return narrow // self.channels_per_sub_band

    def uplink_channels(self, sub_band: int = 0) -> tuple[Channel, ...]:
        """The uplink channels in use: all of them, or those of one sub-band (1-based) of a fixed band:
        its narrow channels plus, when the band has them, the wide channel of the same number."""
        self.check_sub_band(sub_band)
        channels = self.uplink_channel_list
        if not sub_band:
            return channels
        width = self.channels_per_sub_band
        first = (sub_band - 1) * width
        narrow = self.fixed_uplink[0][3]
        chosen = [c for c in channels if first <= c.index < first + width]
        chosen += [c for c in channels if c.index == narrow + sub_band - 1]
        return tuple(chosen)

    def check_sub_band(self, sub_band: int) -> int:
        if isinstance(sub_band, bool) or not isinstance(sub_band, int) or not 0 <= sub_band <= self.sub_bands:
            allowed = f"0..{self.sub_bands}" if self.sub_bands else "0 (the band has no sub-bands)"
            raise ProtocolError("bad_sub_band", f"{self.name} sub-band must be {allowed}, got {sub_band!r}")
        return sub_band

    def tx_power_dbm(self, index: int) -> float:
        """The EIRP a device uses for TXPower `index` (0 = the band's maximum)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= self.max_tx_power_index:
            raise ProtocolError("bad_tx_power", f"{self.name} TXPower must be 0..{self.max_tx_power_index}, "
                                                f"got {index!r}")
        return self.max_eirp_dbm - 2 * index

    # -- receive windows ---------------------------------------------------------------------------
    def channel_of(self, uplink_freq: float) -> Channel | None:
        for channel in self.uplink_channel_list:
            if abs(channel.freq - uplink_freq) < _FREQ_TOLERANCE:
                return channel
        return None

    def rx1_frequency(self, uplink_freq: float) -> float:
        if self.fixed_downlink is None:
            return uplink_freq
        channel = self.channel_of(uplink_freq)
        if channel is None:
            raise ProtocolError("bad_frequency", f"{uplink_freq} MHz is not an uplink channel of {self.name}")
        first, step, count = self.fixed_downlink
        return round(first + step * (channel.index % count), 4)

    # -- join-accept -------------------------------------------------------------------------------
    def cflist(self, sub_band: int = 0) -> bytes | None:
        """The 16-byte CFList for join-accepts, or None when the band (or plan) has none to send."""
        self.check_sub_band(sub_band)
        if self.cflist_type == CFLIST_FREQUENCIES:
            if not self.extra_channels:
                return None
            freqs = list(self.extra_channels[:5]) + [0.0] * (5 - len(self.extra_channels[:5]))
            body = b"".join(round(f * 10_000).to_bytes(3, "little") for f in freqs)
            return body + bytes((CFLIST_FREQUENCIES,))
        if self.cflist_type == CFLIST_CHANNEL_MASK:
            mask = self.channel_mask(sub_band)
            words = b"".join(((mask >> (16 * n)) & 0xFFFF).to_bytes(2, "little") for n in range(5))
            return words + bytes(5) + bytes((CFLIST_CHANNEL_MASK,))
        return None

    def channel_mask(self, sub_band: int = 0) -> int:
        """Bit n set = channel n enabled."""
        mask = 0
        for channel in self.uplink_channels(sub_band):
            mask |= 1 << channel.index
        return mask

"""Adaptive data rate: from a device's recent link quality to its data rate, TX power and NbTrans.

The engine looks at the best SNR of the last `HISTORY` uplinks (each uplink's best gateway). The
room above what the current spreading factor needs to be demodulated, less an installation margin,
is spent in 3 dB steps: first a faster data rate (up to the band's ADR ceiling), then less TX
power; a negative room raises the power back, step by step. The data rate is never lowered here:
a device that loses the network lowers it by itself (ADRACKReq back-off). NbTrans follows the
frame loss seen in the same history.
"""

from __future__ import annotations

from dataclasses import dataclass

from .band import Region

HISTORY = 20
STEP_DB = 3.0
# SNR (dB) below which a LoRa demodulator loses the frame, per spreading factor.
REQUIRED_SNR = {5: -2.5, 6: -5.0, 7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}


@dataclass(frozen=True)
class LinkSettings:
    dr: int
    tx_power: int  # TXPower index: 0 = the band's maximum EIRP, each step 2 dB less
    nb_trans: int


def nb_trans_for_loss(loss: float) -> int:
    if loss < 0.05:
        return 1
    if loss < 0.10:
        return 2
    return 3


def frame_loss(history: list[list[float]]) -> float:
    """Share of frames missing between the first and last counter of the history (the counters
    only grow: the history holds new uplinks only)."""
    if len(history) < 2:
        return 0.0
    span = history[-1][0] - history[0][0] + 1
    if span <= len(history):
        return 0.0
    return 1.0 - len(history) / span


def decide(region: Region, current: LinkSettings, history: list[list[float]], margin_db: float) -> LinkSettings:
    """The settings the device should use. `history` holds [fcnt, best SNR] per uplink, oldest first;
    nothing changes until it holds `HISTORY` uplinks."""
    if len(history) < HISTORY:
        return current
    recent = history[-HISTORY:]
    lo, hi = region.adr_drs
    dr, power = current.dr, current.tx_power
    rate = region.data_rates[dr] if 0 <= dr < len(region.data_rates) else None
    if rate is None or rate.sf is None:
        return current  # FSK or an unknown rate: nothing to reason about
    room = max([entry[1] for entry in recent]) - REQUIRED_SNR[rate.sf] - margin_db
    steps = int(room // STEP_DB)
    adjustable = lo <= dr <= hi
    while steps > 0 and adjustable and dr < hi:
        dr += 1
        steps -= 1
    top = region.max_tx_power_index
    power = min(max(power, 0), top)
    while steps > 0 and power < top:
        power += 1
        steps -= 1
    while steps < 0 and power > 0:
        power -= 1
        steps += 1
    nb_trans = nb_trans_for_loss(frame_loss(recent))
    return LinkSettings(dr, power, nb_trans)

"""The LoRaWAN MAC layer (1.0.x, network side), pure: an uplink's MAC commands and the device's MAC
state in; the answers, the network's requests and the new state out.

The MAC state is a plain dict kept in the device's session and changed only by the journal fold,
through `apply_uplink` (the device's answers, ADR history) and `apply_downlink` (requests sent).
`handle` runs the same two functions on a copy to tell what the state will be, so decisions and
replay cannot disagree.

What the network asks for:
- LinkADRReq: the ADR engine's data rate, TX power and NbTrans for a device that sets the ADR bit,
  and, on fixed-channel bands with a sub-band, the channel mask (once acknowledged, never again);
- DevStatusReq every `dev_status_interval` seconds;
- RXParamSetupReq, RXTimingSetupReq, DutyCycleReq when the operator's settings for the device
  differ from what the device acknowledged; NewChannelReq for the band's extra channels when the
  device did not get them in a join-accept's CFList (ABP). A request the device refused is not
  repeated until the operator asks for something else.
Answered at once: LinkCheckReq (margin of the best SNR, gateways after dedup) and DeviceTimeReq
(GPS time of the reception). An ADRACKReq, RXParamSetupAns or RXTimingSetupAns needs a downlink
even when there is nothing to say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import adr
from .band import Region
from .mac_commands import MacCommand

ADR_WAIT_MAX = 64  # uplinks before a request is asked again at most, after unanswered or refused ones
GPS_EPOCH_UNIX = 315_964_800  # 1980-01-06T00:00:00Z
# Unix times from which GPS - UTC grew by one more second (1981-07-01 ... 2017-01-01).
LEAP_SECONDS_FROM = (362_793_600, 394_329_600, 425_865_600, 489_024_000, 567_993_600, 631_152_000, 662_688_000,
                     709_948_800, 741_484_800, 773_020_800, 820_454_400, 867_715_200, 915_148_800, 1_136_073_600,
                     1_230_768_000, 1_341_100_800, 1_435_708_800, 1_483_228_800)

# Answers that a device repeats in every uplink until it receives a downlink.
_STICKY_ANSWERS = {"RXParamSetupAns", "RXTimingSetupAns", "DlChannelAns"}


def new_state(*, cflist: bool = False) -> dict[str, Any]:
    """The MAC state of a fresh session (after a join, or for a new ABP device)."""
    return {
        "dr": None, "tx_power": 0, "nb_trans": 1,  # acknowledged by LinkADRAns (dr None: never set)
        "ch_mask_ok": False,  # the sub-band channel mask was acknowledged
        "extra_channels": cflist,  # the device knows the band's extra channels (CFList or NewChannelReq)
        "history": [],  # [fcnt, best SNR] of the last uplinks with the ADR bit
        "pending": [],  # requests of the last downlink, waiting for their answers
        "rx1_dr_offset": 0, "rx2_dr": None, "rx2_freq": None, "rx1_delay": None, "max_duty_cycle": 0,
        "battery": None, "margin": None, "status_at": None, "status_asked": None,
        "misses": {},  # request name -> unanswered or refused in a row
        "wait": {},  # request name -> uplinks before it may be asked again
        "refused": {},  # request name -> the fields the device refused
    }


def copy_state(state: dict[str, Any]) -> dict[str, Any]:
    out = dict(state)
    out["history"] = list(state["history"])
    out["pending"] = list(state["pending"])
    out["refused"] = dict(state["refused"])
    out["misses"] = dict(state["misses"])
    out["wait"] = dict(state["wait"])
    return out


@dataclass(frozen=True)
class MacContext:
    region: Region
    sub_band: int = 0
    adr: bool = True
    adr_margin_db: float = 10.0
    dev_status_interval: float = 0.0  # seconds; 0 = never
    rx1_delay: int = 1
    extra_channels: bool = True  # dynamic-channel bands: announce the band's extra channels


@dataclass(slots=True)
class Uplink:
    fcnt: int
    dr: int
    snr: float | None  # the best gateway's
    gateways: int  # after dedup
    adr: bool
    adr_ack_req: bool
    commands: tuple[MacCommand, ...]
    now: float  # Unix seconds
    received: float  # Unix seconds of the reception (for DeviceTimeAns)


class MacOutcome:
    """Answers and requests for one uplink, and the MAC state after it (computed when first read:
    most uplinks never need it)."""

    __slots__ = ("answers", "requests", "must_reply", "_state", "_before", "_up")

    def __init__(self, before: dict[str, Any], up: Uplink, after: dict[str, Any] | None):
        self.answers: list[MacCommand] = []
        self.requests: list[MacCommand] = []
        self.must_reply = False
        self._before, self._up, self._state = before, up, after

    @property
    def commands(self) -> list[MacCommand]:
        return self.answers + self.requests

    @property
    def state(self) -> dict[str, Any]:
        if self._state is None:
            self._state = _after_uplink(self._before, self._up)
        return self._state

    @property
    def window_state(self) -> dict[str, Any]:
        """The state to read receive-window settings from (unchanged by an uplink without answers)."""
        return self._state if self._state is not None else self._before


def gps_seconds(unix: float) -> float:
    """GPS time (seconds since 1980-01-06, no leap seconds) of a Unix time."""
    leaps = sum(1 for t in LEAP_SECONDS_FROM if unix >= t)
    return unix - GPS_EPOCH_UNIX + leaps


def best_snr(copies: list[dict[str, Any]]) -> float | None:
    snrs = [c["snr"] for c in copies if c.get("snr") is not None]
    return max(snrs) if snrs else None


# -- the fold ----------------------------------------------------------------------------------------
_ANSWER_OF = {"LinkADRReq": "LinkADRAns", "RXParamSetupReq": "RXParamSetupAns", "RXTimingSetupReq": "RXTimingSetupAns",
              "DutyCycleReq": "DutyCycleAns", "NewChannelReq": "NewChannelAns", "DevStatusReq": "DevStatusAns",
              "TxParamSetupReq": "TxParamSetupAns", "DlChannelReq": "DlChannelAns"}


def apply_uplink(state: dict[str, Any], fcnt: int, snr: float | None, adr_bit: bool,
                 commands: list[dict[str, Any]] | None) -> None:
    """A new (not repeated) uplink: its SNR joins the ADR history, its answers settle the pending
    requests. A request left without an answer, or refused, is not asked again for a while
    (1, 2, 4 ... up to ADR_WAIT_MAX uplinks); one refused keeps being refused until the operator
    asks for something else."""
    if adr_bit and snr is not None:
        history = state["history"]
        history.append([fcnt, snr])
        if len(history) > adr.HISTORY:
            del history[:-adr.HISTORY]
    wait = state["wait"]
    if wait:
        state["wait"] = {name: n - 1 for name, n in wait.items() if n > 1}
    pending = state["pending"]
    if not commands and not pending:
        return
    by_name: dict[str, list[dict[str, Any]]] = {}
    for command in commands or ():
        by_name.setdefault(command["cmd"], []).append(command)
    for answer in by_name.get("DevStatusAns", ()):
        state["battery"], state["margin"] = answer["battery"], answer["margin"]
        state["status_at"] = state["status_asked"]
    settled: dict[str, bool] = {}  # request name -> accepted
    for request in pending:
        name = request["cmd"]
        answers = by_name.get(_ANSWER_OF.get(name, ""))
        if not answers:
            settled.setdefault(name, False)
            continue
        accepted = _apply_answer(state, request, answers)
        settled[name] = settled.get(name, True) and accepted
        if not accepted:
            state["refused"][name] = _fields(request)
    for name, accepted in settled.items():
        if accepted:
            state["misses"].pop(name, None)
            state["refused"].pop(name, None)
        elif name != "DevStatusReq":  # that one has its own schedule
            misses = state["misses"][name] = state["misses"].get(name, 0) + 1
            state["wait"][name] = min(2 ** misses, ADR_WAIT_MAX)
    state["pending"] = []


def _apply_answer(state: dict[str, Any], request: dict[str, Any], answers: list[dict[str, Any]]) -> bool:
    """Apply what the device accepted; False when it refused."""
    name = request["cmd"]
    if name == "LinkADRReq":
        if not all(a["power_ack"] and a["data_rate_ack"] and a["channel_mask_ack"] for a in answers):
            return False
        changed = (state["dr"], state["tx_power"]) != (request["data_rate"], request["tx_power"])
        state.update(dr=request["data_rate"], tx_power=request["tx_power"], nb_trans=request["nb_trans"] or 1,
                     ch_mask_ok=True)
        if changed:
            state["history"] = []  # measured with the old settings
        return True
    if name == "RXParamSetupReq":
        last = answers[-1]
        if not (last["rx1_dr_offset_ack"] and last["rx2_data_rate_ack"] and last["channel_ack"]):
            return False
        state.update(rx1_dr_offset=request["rx1_dr_offset"], rx2_dr=request["rx2_data_rate"],
                     rx2_freq=request["frequency"])
        return True
    if name == "NewChannelReq":
        if not all(a["data_rate_range_ok"] and a["channel_frequency_ok"] for a in answers):
            return False
        state["extra_channels"] = True
        return True
    if name == "RXTimingSetupReq":
        state["rx1_delay"] = request["delay"] or 1
    elif name == "DutyCycleReq":
        state["max_duty_cycle"] = request["max_duty_cycle"]
    return True


def apply_downlink(state: dict[str, Any], commands: list[dict[str, Any]] | None, now: float) -> None:
    """A downlink went out with these MAC commands: the requests among them wait for answers."""
    if not commands:
        return
    state["pending"] = [c for c in commands if c["cmd"].endswith("Req")]
    if any(c["cmd"] == "DevStatusReq" for c in commands):
        state["status_asked"] = now


def _fields(command: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in command.items() if k != "cmd"}


# -- deciding ----------------------------------------------------------------------------------------
def _after_uplink(state: dict[str, Any], up: Uplink) -> dict[str, Any]:
    after = copy_state(state)
    apply_uplink(after, up.fcnt, up.snr, up.adr, [c.as_dict() for c in up.commands])
    return after


def handle(ctx: MacContext, state: dict[str, Any], settings: dict[str, Any], up: Uplink) -> MacOutcome:
    """What to answer and ask after this uplink; `state` is not changed.

    Decided on the state as the fold will leave it after this uplink. Most uplinks carry no
    answer and find nothing pending or waiting: for those the state only gains an ADR history
    entry, so no copy is made."""
    commands = up.commands
    if commands or state["pending"] or state["wait"]:
        view = _after_uplink(state, up)
        history = view["history"]
        out = MacOutcome(state, up, view)
    else:
        view = state
        history = state["history"]
        if up.adr and up.snr is not None and len(history) + 1 >= adr.HISTORY:
            history = history[1 - adr.HISTORY:] + [[up.fcnt, up.snr]]
        out = MacOutcome(state, up, None)
    if commands:
        names = {c.name for c in commands}
        if "LinkCheckReq" in names:
            rate = ctx.region.data_rates[up.dr]
            margin = 0 if up.snr is None or rate is None or rate.sf is None else up.snr - adr.REQUIRED_SNR[rate.sf]
            out.answers.append(MacCommand("LinkCheckAns", {"margin": max(0, min(254, int(margin))),
                                                           "gw_cnt": max(1, min(255, up.gateways))}))
        if "DeviceTimeReq" in names:
            gps = max(0.0, gps_seconds(up.received))
            out.answers.append(MacCommand("DeviceTimeAns", {"gps_seconds": int(gps) & 0xFFFF_FFFF,
                                                            "fraction": int((gps % 1) * 256) & 0xFF}))
        out.must_reply = bool(out.answers) or bool(names & _STICKY_ANSWERS)
    out.must_reply = out.must_reply or up.adr_ack_req
    requests = out.requests
    if up.adr or ctx.region.fixed_channels:
        requests += _link_adr(ctx, view, history, up)
    if _settings_wanted(ctx, view, settings):
        requests += _settings_requests(ctx, view, settings)
    if ctx.dev_status_interval > 0 and (view["status_asked"] is None
                                        or up.now - view["status_asked"] >= ctx.dev_status_interval):
        requests.append(MacCommand("DevStatusReq", {}))
    return out


def _settings_wanted(ctx: MacContext, state: dict[str, Any], settings: dict[str, Any]) -> bool:
    """Cheap check: may `_settings_requests` find anything to ask?"""
    if not state["extra_channels"] and ctx.extra_channels and ctx.region.extra_channels:
        return True
    return any(value is not None for name, value in settings.items() if name != "class")


def _link_adr(ctx: MacContext, state: dict[str, Any], history: list[list[float]], up: Uplink) -> list[MacCommand]:
    region = ctx.region
    needs_mask = region.fixed_channels and ctx.sub_band and not state["ch_mask_ok"]
    if state["wait"].get("LinkADRReq") and not up.adr_ack_req:
        return []
    lo, hi = region.adr_drs
    current = adr.LinkSettings(up.dr, state["tx_power"], state["nb_trans"])
    target = current
    if ctx.adr and up.adr:
        target = adr.decide(region, current, history, ctx.adr_margin_db)
    if target == current and not needs_mask:
        return []
    if not lo <= target.dr <= hi and target.dr != up.dr:
        return []
    values = {"data_rate": target.dr, "tx_power": target.tx_power, "nb_trans": target.nb_trans}
    return [MacCommand("LinkADRReq", {**values, "ch_mask_cntl": cntl, "ch_mask": mask})
            for cntl, mask in channel_mask_blocks(region, ctx.sub_band, state["extra_channels"])]


def channel_mask_blocks(region: Region, sub_band: int, extra_channels: bool) -> list[tuple[int, int]]:
    """(ChMaskCntl, ChMask) of the LinkADRReq block that enables the channels in use."""
    if not region.fixed_channels:
        known = len(region.default_channels) + (len(region.extra_channels) if extra_channels else 0)
        return [(0, (1 << known) - 1)]
    wide = len(region.fixed_uplink) > 1  # US915/AU915: 500 kHz channels 64..71
    if not sub_band:
        return [(6, 0xFF if wide else 0)]  # every channel on
    mask = region.channel_mask(sub_band)
    if wide:
        narrow_block = (sub_band - 1) // 2
        # 7: every 125 kHz channel off, ChMask = the 500 kHz channels; then the sub-band's block.
        return [(7, mask >> 64), (narrow_block, (mask >> (16 * narrow_block)) & 0xFFFF)]
    blocks = (region.fixed_uplink[0][3] + 15) // 16
    return [(n, (mask >> (16 * n)) & 0xFFFF) for n in range(blocks)]


def _settings_requests(ctx: MacContext, state: dict[str, Any], settings: dict[str, Any]) -> list[MacCommand]:
    region = ctx.region
    refused = state["refused"]
    out: list[MacCommand] = []

    def ask(name: str, fields: dict[str, Any]) -> None:
        if refused.get(name) != fields and not state["wait"].get(name):
            out.append(MacCommand(name, fields))

    rx2_hz = round(region.rx2_frequency * 1_000_000)
    now = {"rx1_dr_offset": state["rx1_dr_offset"], "rx2_data_rate": _or(state["rx2_dr"], region.rx2_dr),
           "frequency": _or(state["rx2_freq"], rx2_hz)}
    wanted = {"rx1_dr_offset": _or(settings.get("rx1_dr_offset"), now["rx1_dr_offset"]),
              "rx2_data_rate": _or(settings.get("rx2_dr"), now["rx2_data_rate"]),
              "frequency": _or(settings.get("rx2_freq"), now["frequency"])}
    if wanted != now:
        ask("RXParamSetupReq", wanted)
    want_delay = settings.get("rx1_delay")
    if want_delay is not None and want_delay != _or(state["rx1_delay"], ctx.rx1_delay):
        ask("RXTimingSetupReq", {"delay": want_delay})
    want_duty = settings.get("max_duty_cycle")
    if want_duty is not None and want_duty != state["max_duty_cycle"]:
        ask("DutyCycleReq", {"max_duty_cycle": want_duty})
    if (ctx.extra_channels and not region.fixed_channels and region.extra_channels and not state["extra_channels"]
            and "NewChannelReq" not in refused and not state["wait"].get("NewChannelReq")):
        lo, hi = region.extra_channel_drs
        first = len(region.default_channels)
        out += [MacCommand("NewChannelReq", {"ch_index": first + n, "frequency": round(freq * 1_000_000),
                                             "max_dr": hi, "min_dr": lo})
                for n, freq in enumerate(region.extra_channels)]
    return out


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


# -- packing -----------------------------------------------------------------------------------------
def pack(commands: list[MacCommand], room: int) -> list[MacCommand]:
    """The leading commands that fit in `room` bytes; a LinkADRReq block goes whole or not at all."""
    out: list[MacCommand] = []
    used = 0
    i = 0
    while i < len(commands):
        j = i + 1
        if commands[i].name == "LinkADRReq":
            while j < len(commands) and commands[j].name == "LinkADRReq":
                j += 1
        group = commands[i:j]
        size = sum(c.size for c in group)
        if used + size <= room:
            out += group
            used += size
        i = j
    return out

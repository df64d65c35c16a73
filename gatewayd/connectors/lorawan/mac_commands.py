"""LoRaWAN 1.0.x MAC commands: decode and encode (sans-IO).

Every command of LoRaWAN 1.0.0 to 1.0.4 in both directions, class B's included. A command is a
`MacCommand(name, fields)`; `fields` holds plain ints and bools (frequencies in Hz), so a command
goes into a journal record as `as_dict()` and comes back with `from_dict()`.

The direction decides the meaning of a CID (0x03 uplink is LinkADRAns, downlink LinkADRReq), so
every call says which direction it reads or writes. An unknown CID ends the parse: its length is
unknown, so nothing after it can be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import ProtocolError

MAX_FOPTS = 15

# A field layout is a sequence of parts, one per byte run:
#   ("u8"|"u16"|"u24"|"u32", name)  little-endian unsigned integer
#   ("freq", name)                   3 bytes, units of 100 Hz, shown in Hz
#   ("s6", name)                     6-bit two's complement in the low bits of one byte
#   ("bits", ((name, shift, width), ...))  one byte split into fields (width 1 = a bool)
_ACK1 = lambda name: (name, 0, 1)  # noqa: E731  (a one-bit flag at bit 0)

_SPECS: dict[int, tuple[tuple[str, tuple] | None, tuple[str, tuple] | None]] = {
    # cid: ((uplink name, layout), (downlink name, layout))
    0x02: (("LinkCheckReq", ()), ("LinkCheckAns", (("u8", "margin"), ("u8", "gw_cnt")))),
    0x03: (("LinkADRAns", (("bits", (("power_ack", 2, 1), ("data_rate_ack", 1, 1), _ACK1("channel_mask_ack"))),)),
           ("LinkADRReq", (("bits", (("data_rate", 4, 4), ("tx_power", 0, 4))), ("u16", "ch_mask"),
                           ("bits", (("ch_mask_cntl", 4, 3), ("nb_trans", 0, 4)))))),
    0x04: (("DutyCycleAns", ()), ("DutyCycleReq", (("bits", (("max_duty_cycle", 0, 4),)),))),
    0x05: (("RXParamSetupAns", (("bits", (("rx1_dr_offset_ack", 2, 1), ("rx2_data_rate_ack", 1, 1),
                                          _ACK1("channel_ack"))),)),
           ("RXParamSetupReq", (("bits", (("rx1_dr_offset", 4, 3), ("rx2_data_rate", 0, 4))),
                                ("freq", "frequency")))),
    0x06: (("DevStatusAns", (("u8", "battery"), ("s6", "margin"))), ("DevStatusReq", ())),
    0x07: (("NewChannelAns", (("bits", (("data_rate_range_ok", 1, 1), _ACK1("channel_frequency_ok"))),)),
           ("NewChannelReq", (("u8", "ch_index"), ("freq", "frequency"),
                              ("bits", (("max_dr", 4, 4), ("min_dr", 0, 4)))))),
    0x08: (("RXTimingSetupAns", ()), ("RXTimingSetupReq", (("bits", (("delay", 0, 4),)),))),
    0x09: (("TxParamSetupAns", ()),
           ("TxParamSetupReq", (("bits", (("downlink_dwell_time", 5, 1), ("uplink_dwell_time", 4, 1),
                                          ("max_eirp", 0, 4))),))),
    0x0A: (("DlChannelAns", (("bits", (("uplink_frequency_exists", 1, 1), _ACK1("channel_frequency_ok"))),)),
           ("DlChannelReq", (("u8", "ch_index"), ("freq", "frequency")))),
    0x0D: (("DeviceTimeReq", ()), ("DeviceTimeAns", (("u32", "gps_seconds"), ("u8", "fraction")))),
    0x10: (("PingSlotInfoReq", (("bits", (("periodicity", 0, 3),)),)), ("PingSlotInfoAns", ())),
    0x11: (("PingSlotChannelAns", (("bits", (("data_rate_ok", 1, 1), _ACK1("channel_frequency_ok"))),)),
           ("PingSlotChannelReq", (("freq", "frequency"), ("bits", (("data_rate", 0, 4),))))),
    0x12: (("BeaconTimingReq", ()), ("BeaconTimingAns", (("u16", "delay"), ("u8", "channel")))),
    0x13: (("BeaconFreqAns", (("bits", (_ACK1("beacon_frequency_ok"),)),)), ("BeaconFreqReq", (("freq", "frequency"),))),
}

_WIDTH = {"u8": 1, "u16": 2, "u24": 3, "u32": 4, "freq": 3, "s6": 1, "bits": 1}


def _size(layout: tuple) -> int:
    return sum(_WIDTH[kind] for kind, _ in layout)


# name -> (cid, uplink, layout, payload size)
BY_NAME: dict[str, tuple[int, bool, tuple, int]] = {}
# (cid, uplink) -> (name, layout, payload size)
BY_CID: dict[tuple[int, bool], tuple[str, tuple, int]] = {}
for _cid, (_up, _down) in _SPECS.items():
    for _uplink, _spec in ((True, _up), (False, _down)):
        if _spec is not None:
            _name, _layout = _spec
            BY_NAME[_name] = (_cid, _uplink, _layout, _size(_layout))
            BY_CID[(_cid, _uplink)] = (_name, _layout, _size(_layout))


def field_names(name: str) -> list[str]:
    out = []
    for kind, what in BY_NAME[name][2]:
        out += [f[0] for f in what] if kind == "bits" else [what]
    return out


@dataclass(frozen=True)
class MacCommand:
    name: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def cid(self) -> int:
        return BY_NAME[self.name][0]

    @property
    def uplink(self) -> bool:
        return BY_NAME[self.name][1]

    @property
    def size(self) -> int:
        """Bytes on air, the CID included."""
        return 1 + BY_NAME[self.name][3]

    def as_dict(self) -> dict[str, Any]:
        return {"cmd": self.name, **self.fields}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MacCommand:
        return cls(data["cmd"], {k: v for k, v in data.items() if k != "cmd"})


def make(name: str, **fields: Any) -> MacCommand:
    """A command with every field given (checked by encoding it)."""
    if name not in BY_NAME:
        raise ProtocolError("bad_mac", f"unknown MAC command {name!r}")
    command = MacCommand(name, fields)
    encode(command)
    return command


# -- decoding ----------------------------------------------------------------------------------------
def _read(layout: tuple, body: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pos = 0
    for kind, what in layout:
        width = _WIDTH[kind]
        chunk = body[pos:pos + width]
        pos += width
        if kind == "bits":
            byte = chunk[0]
            for name, shift, bits in what:
                value = (byte >> shift) & ((1 << bits) - 1)
                out[name] = bool(value) if bits == 1 else value
        elif kind == "s6":
            value = chunk[0] & 0x3F
            out[what] = value - 64 if value & 0x20 else value
        elif kind == "freq":
            out[what] = int.from_bytes(chunk, "little") * 100
        else:
            out[what] = int.from_bytes(chunk, "little")
    return out


def decode(data: bytes, *, uplink: bool) -> tuple[list[MacCommand], str | None]:
    """The commands in FOpts or an FPort 0 payload, and an error for what could not be read."""
    commands: list[MacCommand] = []
    data = bytes(data)
    pos = 0
    while pos < len(data):
        cid = data[pos]
        spec = BY_CID.get((cid, uplink))
        if spec is None:
            return commands, f"unknown MAC command 0x{cid:02x} at byte {pos}"
        name, layout, size = spec
        body = data[pos + 1:pos + 1 + size]
        if len(body) < size:
            return commands, f"{name} at byte {pos} is cut short ({len(body)} of {size} bytes)"
        commands.append(MacCommand(name, _read(layout, body)))
        pos += 1 + size
    return commands, None


# -- encoding ----------------------------------------------------------------------------------------
def _uint(command: str, name: str, value: Any, bits: int) -> int:
    if isinstance(value, bool) and bits == 1:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ProtocolError("bad_mac", f"{command}.{name} must be an integer in 0..{(1 << bits) - 1}, got {value!r}")
    return value


def encode(command: MacCommand) -> bytes:
    spec = BY_NAME.get(command.name)
    if spec is None:
        raise ProtocolError("bad_mac", f"unknown MAC command {command.name!r}")
    cid, _, layout, _ = spec
    fields = command.fields
    missing = [n for n in field_names(command.name) if n not in fields]
    if missing:
        raise ProtocolError("bad_mac", f"{command.name} needs {', '.join(missing)}")
    out = bytearray((cid,))
    for kind, what in layout:
        if kind == "bits":
            byte = 0
            for name, shift, bits in what:
                byte |= _uint(command.name, name, fields[name], bits) << shift
            out.append(byte)
        elif kind == "s6":
            value = fields[what]
            if isinstance(value, bool) or not isinstance(value, int) or not -32 <= value <= 31:
                raise ProtocolError("bad_mac", f"{command.name}.{what} must be in -32..31, got {value!r}")
            out.append(value & 0x3F)
        elif kind == "freq":
            hz = fields[what]
            if isinstance(hz, bool) or not isinstance(hz, int) or hz % 100 or not 0 <= hz // 100 < 1 << 24:
                raise ProtocolError("bad_mac", f"{command.name}.{what} must be a whole number of 100 Hz below "
                                               f"1677.7216 MHz, got {hz!r}")
            out += (hz // 100).to_bytes(3, "little")
        else:
            width = _WIDTH[kind]
            out += _uint(command.name, what, fields[what], 8 * width).to_bytes(width, "little")
    return bytes(out)


def encode_all(commands: list[MacCommand]) -> bytes:
    return b"".join(encode(c) for c in commands)

"""LoRaWAN network service (class A, LoRaWAN 1.0.x): the facade the transports and operations use.

Parts: gateways (lorawan_gateways), uplinks and dedup (lorawan_uplink, lorawan_dedup), joins
(lorawan_join), downlinks and TX_ACKs (lorawan_downlink), keys (lorawan_keys), monitoring frames
(lorawan_comms). The UDP transport (transports/udp.py) hands datagrams to `push_data`,
`pull_data` and `tx_ack`, and gives its send function through `attach_transmitter`.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import trio

from ... import secretbox
from ...opcommands import Arg, CliError, OpCommand, pairs as _pairs, table as _table
from ...logs import RateLimitedLogger
from ...ops import OpError, operation
from . import gwmp, regions
from .class_c import ClassC
from .downlink import Downlinks
from .gateways import Gateways, normalize_eui
from .join import Joins
from .keys import Keys, device_class
from .mac import MacContext
from .uplink import Network

log = logging.getLogger("gatewayd.lorawan")

Transmit = Callable[[bytes, tuple], Awaitable[None]]


class LorawanService:
    def __init__(self, core):
        self.core = core
        cfg = core.settings.lorawan
        self.region = regions.get_region(cfg.region)
        self.rx1_delay = max(1, min(15, round(cfg.rx1_delay)))
        self.sub_band = self.region.check_sub_band(cfg.sub_band)
        self.tx_power = cfg.tx_power or self.region.downlink_tx_power_dbm
        self.mac_context = MacContext(self.region, self.sub_band, adr=cfg.adr, adr_margin_db=cfg.adr_margin_db,
                                      dev_status_interval=cfg.dev_status_hours * 3600, rx1_delay=self.rx1_delay,
                                      extra_channels=cfg.extra_channels)
        self.keys = Keys(secretbox.for_state_dir(core.settings.state_path))
        self.gateways = Gateways(core)
        self.downlinks = Downlinks(self)
        self.class_c = ClassC(self)
        self.network = Network(self)
        self.joins = Joins(self)
        self.transmit: Transmit | None = None
        self._rlog = RateLimitedLogger(log, 60.0)

    # -- contract A: `device.create` for kind "lorawan" ------------------------------------------------
    def prepare_device(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate `device add --lorawan` arguments and seal the keys (raises OpError)."""
        return self.keys.prepare_device(args, self.core.state.lorawan.devices)

    # -- the UDP transport's side ----------------------------------------------------------------------
    def attach_transmitter(self, transmit: Transmit | None) -> None:
        self.transmit = transmit

    async def admit(self, eui: str, addr: tuple, version: int, announce: bool = True) -> bool:
        """May this gateway talk to us? `announce`: journal its coming online now (the caller
        does not journal a keep-alive or stat for this datagram)."""
        return await self.gateways.admit(eui, addr, version, announce)

    async def push_data(self, push: gwmp.PushData, addr: tuple) -> None:
        now = trio.current_time()
        receive = self.network.receive
        for rx in push.rxpk:
            receive(push.gateway_eui, rx, now)
        if push.errors:
            self.core.metrics.inc("gatewayd_gwmp_bad_entries_total", len(push.errors))
            self._rlog.warning(f"entries:{addr[0]}", "gateway %s sent %d malformed entries: %s",
                               push.gateway_eui, len(push.errors), push.errors[0][:200])
        if push.stat is not None:
            await self.gateways.stat(push.gateway_eui, push.stat, addr, push.version)

    async def pull_data(self, pull: gwmp.PullData, addr: tuple) -> None:
        await self.gateways.keepalive(pull, addr)

    async def tx_ack(self, ack: gwmp.TxAck, addr: tuple) -> None:
        await self.downlinks.tx_ack(ack, addr)

    # -- background work -------------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.network.run)
            nursery.start_soon(self.gateways.run_sweeper)
            nursery.start_soon(self.class_c.run)
            task_status.started()

    # -- operator views --------------------------------------------------------------------------------
    def device_view(self, session: dict[str, Any]) -> dict[str, Any]:
        """A session without its keys; "mac" summarises the link as the MAC layer knows it."""
        hidden = {"app_key", "nwk_s_key", "app_s_key", "dev_nonces", "mac"}
        out = {k: v for k, v in session.items() if k not in hidden}
        out["dev_nonces_used"] = len(session["dev_nonces"])
        out["queue"] = [dict(c) for c in session["queue"]]
        out["settings"] = dict(session["settings"])
        out["class"] = session["settings"]["class"]
        out["mac"] = self.link_view(session)
        return out

    def link_view(self, session: dict[str, Any]) -> dict[str, Any]:
        state = session["mac"]
        region = self.region
        power = state["tx_power"]
        rx1_delay, offset, rx2_freq, rx2_dr = self.downlinks.rx_windows(state)
        return {
            "dr": session["last_dr"], "adr_dr": state["dr"], "tx_power": power,
            "tx_power_dbm": region.tx_power_dbm(power) if power <= region.max_tx_power_index else None,
            "nb_trans": state["nb_trans"], "battery": state["battery"], "margin": state["margin"],
            "status_at": state["status_at"], "rx1_delay": rx1_delay, "rx1_dr_offset": offset, "rx2_freq": rx2_freq,
            "rx2_dr": rx2_dr, "max_duty_cycle": state["max_duty_cycle"], "extra_channels": state["extra_channels"],
            "channel_mask_set": state["ch_mask_ok"], "adr_history": len(state["history"]),
            "pending": [c["cmd"] for c in state["pending"]],
        }

    def check_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate operator settings against the region (raises OpError); rx2_freq MHz -> Hz."""
        region = self.region
        out: dict[str, Any] = {}

        def whole(name: str, lo: int, hi: int) -> None:
            value = changes[name]
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise OpError("invalid", f"{name} must be a whole number from {lo} to {hi} in {region.name}", 422)
            out[name] = value

        for name, value in changes.items():
            if value is None:
                continue
            if name == "class":
                out[name] = device_class(value)
            elif name == "rx1_dr_offset":
                whole(name, 0, min(len(row) for row in region.rx1_dr_table if row) - 1)
            elif name == "rx2_dr":
                whole(name, 0, len(region.data_rates) - 1)
                rate = region.data_rates[out[name]]
                if rate is None or not rate.downlink:
                    raise OpError("invalid", f"DR{out[name]} is not a downlink data rate of {region.name}", 422)
            elif name == "rx2_freq":
                try:
                    hz = round(float(value) * 1_000_000)
                except (TypeError, ValueError):
                    hz = -1
                if not 100_000_000 <= hz <= 1_000_000_000 or hz % 100:
                    raise OpError("invalid", "rx2_freq is in MHz (e.g. 869.525), to the nearest 100 Hz", 422)
                out[name] = hz
            elif name == "rx1_delay":
                whole(name, 1, 15)
            elif name == "max_duty_cycle":
                whole(name, 0, 15)
            else:
                raise OpError("invalid", f"unknown setting {name!r}", 422)
        return out

    def session(self, dev_eui: str) -> dict[str, Any]:
        key = dev_eui.lower() if isinstance(dev_eui, str) else ""
        session = self.core.state.lorawan.device(key)
        if session is None:
            raise OpError("not_found", f"no LoRaWAN device with DevEUI {str(dev_eui)[:40]!r}", 404)
        return session


# -- operations ------------------------------------------------------------------------------------------
@operation("gateway.list")
async def gateway_list(core) -> list[dict[str, Any]]:
    service = core.service("lorawan")
    return [service.gateways.public(g) for g in sorted(core.state.lorawan.gateways.values(), key=lambda g: g["eui"])]


@operation("gateway.show")
async def gateway_show(core, eui: str) -> dict[str, Any]:
    gateway = core.state.lorawan.gateway(normalize_eui(eui))
    if gateway is None:
        raise OpError("not_found", f"no gateway with EUI {eui}", 404)
    return core.service("lorawan").gateways.public(gateway)


@operation("gateway.add")
async def gateway_add(core, eui: str, name: str = "", actor: str = "cli", token: str | None = None) -> dict[str, Any]:
    return await core.service("lorawan").gateways.add(eui, name, actor, token)


@operation("gateway.remove")
async def gateway_remove(core, eui: str, actor: str = "cli") -> dict[str, Any]:
    return await core.service("lorawan").gateways.remove(eui, actor)


@operation("lorawan.devices")
async def lorawan_devices(core) -> list[dict[str, Any]]:
    service = core.service("lorawan")
    return [service.device_view(s) for s in sorted(core.state.lorawan.devices.values(), key=lambda s: s["dev_eui"])]


@operation("lorawan.device")
async def lorawan_device(core, dev_eui: str) -> dict[str, Any]:
    service = core.service("lorawan")
    return service.device_view(service.session(dev_eui))


@operation("lorawan.keys")
async def lorawan_keys(core, dev_eui: str, actor: str = "cli") -> dict[str, Any]:
    """The device's keys in clear (admins only: control socket, offline CLI, operator API). Audited."""
    service = core.service("lorawan")
    session = service.session(dev_eui)
    keys = service.keys.reveal(session)
    await core.hub.publish("lorawan.keys_shown", {"dev_eui": session["dev_eui"], "actor": actor})
    return {"dev_eui": session["dev_eui"], "dev_addr": session["dev_addr"], **keys}


@operation("lorawan.tx")
async def lorawan_tx(core, dev_eui: str, port: int, payload: str, confirm: bool = False, reference: str = "",
                     actor: str = "cli") -> dict[str, Any]:
    """Queue a downlink (payload in hex) for the device's next uplink."""
    service = core.service("lorawan")
    session = service.session(dev_eui)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    try:
        data = bytes.fromhex(payload) if isinstance(payload, str) else None
    except ValueError:
        data = None
    if data is None:
        raise OpError("invalid", "payload must be hexadecimal digits (an even number of them)", 422)
    return await service.downlinks.enqueue(session["dev_eui"], port, data, confirm=bool(confirm),
                                           reference=reference, source=actor)


@operation("lorawan.settings")
async def lorawan_settings(core, dev_eui: str, actor: str = "cli", **changes: Any) -> dict[str, Any]:
    """Change a device's class or the receive windows and duty cycle the MAC layer brings it to."""
    service = core.service("lorawan")
    session = service.session(dev_eui)
    checked = service.check_settings(changes)
    if not checked:
        raise OpError("invalid", "nothing to change: give class, rx1_dr_offset, rx2_dr, rx2_freq, rx1_delay or "
                                 "max_duty_cycle", 422)
    await core.hub.publish("lorawan.device_settings", {"dev_eui": session["dev_eui"],
                                                       "device_id": session["device_id"], "settings": checked,
                                                       "actor": actor})
    service.class_c.wake(session["dev_eui"])
    return service.device_view(session)


@operation("lorawan.queue_clear")
async def lorawan_queue_clear(core, dev_eui: str, actor: str = "cli") -> dict[str, Any]:
    service = core.service("lorawan")
    session = service.session(dev_eui)
    dropped = len(session["queue"]) + (1 if session["awaiting_ack"] else 0)
    await core.hub.publish("lorawan.queue_cleared", {"dev_eui": session["dev_eui"], "actor": actor,
                                                     "dropped": dropped})
    return {"dev_eui": session["dev_eui"], "dropped": dropped}


def _gateways_table(rows: list[dict[str, Any]]) -> str:
    return _table([dict(r, online="yes" if r["online"] else "no") for r in rows],
                  ["eui", "name", "source", "connection", "online", "last_seen", "addr", "uplinks", "downlinks"])


def _devices_table(rows: list[dict[str, Any]]) -> str:
    return _table([dict(r, queued=len(r["queue"]), dr=r["mac"]["dr"], battery=r["mac"]["battery"]) for r in rows],
                  ["dev_eui", "name", "activation", "class", "dev_addr", "fcnt_up", "fcnt_down", "dr", "battery",
                   "last_seen", "queued"])


def read_token_file(args: dict[str, Any]) -> dict[str, Any]:
    """`--token-file F` -> `token`: the Bearer value of an `Authorization:` line (a station's tc.key),
    else the file's only line."""
    path = args.pop("token_file", None)
    if path is None:
        return args
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(4096)
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the token file {path}: {exc}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "authorization":
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return dict(args, token=token.strip())
    if len(lines) == 1 and ":" not in lines[0]:
        return dict(args, token=lines[0])
    raise CliError(f"{path} holds neither an 'Authorization: Bearer <token>' line nor a bare token")


def _device_human(result: dict[str, Any]) -> str:
    """`lorawan show`: the session, then the link (data rate, power, margin, battery) line by line."""
    link = result.get("mac") or {}
    battery = link.get("battery")
    battery_text = ("unknown" if battery in (None, 255) else "external power" if battery == 0
                    else f"{round(battery * 100 / 254)}% ({battery}/254)")
    lines = [f"{k}: {v}" for k, v in result.items() if k not in ("mac", "settings", "queue")]
    lines.append(f"queued: {len(result.get('queue', []))}")
    chosen = [f"{k}={v}" for k, v in (result.get("settings") or {}).items() if k != "class" and v is not None]
    lines.append(f"settings: {', '.join(chosen) or 'network defaults'}")
    lines += [
        f"data rate: DR{link.get('dr')}" + (f" (ADR set DR{link['adr_dr']})" if link.get("adr_dr") is not None else ""),
        f"tx power: TXPower {link.get('tx_power')} ({link.get('tx_power_dbm')} dBm EIRP), NbTrans {link.get('nb_trans')}",
        f"margin: {link.get('margin')} dB" if link.get("margin") is not None else "margin: unknown",
        f"battery: {battery_text}",
        f"status at: {link.get('status_at')}",
        f"rx windows: RX1 +{link.get('rx1_delay')} s offset {link.get('rx1_dr_offset')}, "
        f"RX2 {link.get('rx2_freq')} MHz DR{link.get('rx2_dr')}",
        f"mac pending: {', '.join(link.get('pending') or []) or 'none'}",
    ]
    return "\n".join(lines)


COMMANDS = [
    OpCommand(("gateway", "list"), "gateway.list", "list LoRa gateways (packet forwarders)", human=_gateways_table),
    OpCommand(("gateway", "show"), "gateway.show", "show one gateway with its last stat", [Arg("eui")], _pairs),
    OpCommand(("gateway", "add"), "gateway.add", "register a gateway by EUI",
              [Arg("eui", "16 hex digits"), Arg("name", "a label", flag=True),
               Arg("token_file", "file with the token a Station gateway must present (its tc.key lines, "
                   "or the bare token)", flag=True)], _pairs, prepare=read_token_file),
    OpCommand(("gateway", "remove"), "gateway.remove", "forget a gateway", [Arg("eui")],
              lambda r: f"gateway {r['eui']} removed"),
    OpCommand(("lorawan", "devices"), "lorawan.devices", "list LoRaWAN sessions (no keys)", human=_devices_table),
    OpCommand(("lorawan", "device"), "lorawan.device", "show a LoRaWAN session (no keys)", [Arg("dev_eui")], _pairs),
    OpCommand(("lorawan", "show"), "lorawan.device", "show a LoRaWAN device: class, data rate, TX power, margin, "
              "battery, receive windows", [Arg("dev_eui")], _device_human),
    OpCommand(("lorawan", "set"), "lorawan.settings", "change a LoRaWAN device's class or MAC settings",
              [Arg("dev_eui"), Arg("class", "A or C", flag=True),
               Arg("rx1_dr_offset", "RX1 data rate offset", flag=True, type=int),
               Arg("rx2_dr", "RX2 data rate", flag=True, type=int), Arg("rx2_freq", "RX2 frequency (MHz)", flag=True),
               Arg("rx1_delay", "seconds from uplink to RX1", flag=True, type=int),
               Arg("max_duty_cycle", "aggregated duty cycle limit 1/2^N (0 = none)", flag=True, type=int)],
              _device_human),
    OpCommand(("lorawan", "keys"), "lorawan.keys", "print a device's LoRaWAN keys (audited)", [Arg("dev_eui")],
              _pairs),
    OpCommand(("lorawan", "tx"), "lorawan.tx", "queue a downlink for the device's next uplink",
              [Arg("dev_eui"), Arg("port", type=int), Arg("payload", "hex"),
               Arg("confirm", "confirmed downlink", switch=True), Arg("reference", flag=True)], _pairs),
    OpCommand(("lorawan", "queue-clear"), "lorawan.queue_clear", "drop a device's waiting downlinks",
              [Arg("dev_eui")], _pairs),
]

"""LoRaWAN records as ResIOT communications and actions (contract F), and the TX handler.

Every frame comes from the record alone. One `lorawan.uplink` record gives a `comm_gwrx` per
gateway copy, the `comm_rx`, and, when they happened with it, `comm_txconfirm` (the device
acknowledged a confirmed downlink) and `comm_tx` (a queued command handed to the gateway).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable

import orjson

from ...comm_tables import Comms
from ...journal.record import Record
from ..monitor.resiot import (COMM_GWALIVE, COMM_GWRX, COMM_GWTX, COMM_JOIN, COMM_RX, COMM_TX, COMM_TXCONFIRM,
                              COMM_TXINFO, COMM_TXSENDACK, COMM_TXSENDCONFIRM,
                              Action, Communication)
from ..monitor.tx_request import DEFAULT_TX_WINDOW
from .downlink import LorawanTxHandler

CONNECTOR = "lorawan"
_DATR = re.compile(r"SF(\d+)BW(\d+)")


# LoRa datr -> (sf, modBW), asked for every uplink's comm_rx and gateway copies; a region has a
# handful of rates (the cache stops growing at MAX_LORA_RATES all the same).
_LORA_RATES: dict[str, tuple[str, str]] = {}
MAX_LORA_RATES = 64


def _radio(datr: Any, freq: Any) -> dict[str, Any]:
    """sf and modBW for LoRa rates ("SF7BW125"); the raw datr otherwise (FSK)."""
    if type(datr) is str:
        rate = _LORA_RATES.get(datr)
        if rate is None:
            match = _DATR.fullmatch(datr)
            if match:
                rate = (match.group(1), match.group(2))
                if len(_LORA_RATES) < MAX_LORA_RATES:
                    _LORA_RATES[datr] = rate
        if rate is not None:
            return {"sf": rate[0], "modBW": rate[1], "frequency": freq}
    return {"datr": datr, "frequency": freq}


def _copy_extra(copy: dict[str, Any], radio: dict[str, Any], mine: bool = True) -> dict[str, Any]:
    return {"rssi": copy.get("rssi"), "snr": copy.get("snr"), "channel": copy.get("chan"), "tmst": copy.get("tmst"),
            **radio, "Mine": mine}


def record_time(record: Record) -> datetime:
    """The record's UTC timestamp ("...T03:04:05.123456Z"); fromisoformat is C-fast, strptime is not."""
    return datetime.fromisoformat(record.ts[:-1]).replace(tzinfo=timezone.utc)


def _base(record: Record, comm_type: str, dev_eui: str, dt: datetime | None = None, **fields: Any) -> Communication:
    return Communication(comm_type=comm_type, connector=CONNECTOR, dev_eui=dev_eui,
                         dt=dt or record_time(record), seq=record.seq, **fields)


def uplink_comms(record: Record) -> list[Communication]:
    d = record.data
    dt = record_time(record)
    seq = record.seq
    dev_eui = d["dev_eui"]
    app_eui = d.get("app_eui", "")
    port = d.get("port")
    radio = _radio(d["datr"], d["freq"])
    copies = d["gateways"]
    phy = bytes.fromhex(d["phy"])
    out = [Communication(comm_type=COMM_GWRX, connector=CONNECTOR, dev_eui=dev_eui, dt=dt, seq=seq, app_eui=app_eui,
                         port=port, gateway_euis=(copy["eui"],), payload=phy, extra=_copy_extra(copy, radio))
           for copy in copies]
    rssis = [c["rssi"] for c in copies if c.get("rssi") is not None]
    snrs = [c["snr"] for c in copies if c.get("snr") is not None]
    extra = {
        "rssi": max(rssis) if rssis else None, "snr": max(snrs) if snrs else None, **radio,
        "channel": copies[0].get("chan") if copies else None, "seqno": d["fcnt"], "adr": d["adr"],
        "duplicate": d["duplicate"], "confirmed": d["confirmed"], "ack": d["ack"], "dr": d["dr"],
        "devaddr": d["dev_addr"],
    }
    if d.get("fcnt_reset"):
        extra["fcnt_reset"] = True
    downlink = d.get("downlink")
    if "mac_up" in d or "mac_error" in d or d.get("adr_ack_req") or (downlink is not None and "mac" in downlink):
        extra.update(mac_extra(d))
    euis = tuple(c["eui"] for c in copies)
    out.append(Communication(comm_type=COMM_RX, connector=CONNECTOR, dev_eui=dev_eui, dt=dt, seq=seq,
                             app_eui=app_eui, port=port, gateway_euis=euis, payload=bytes.fromhex(d["payload"]),
                             extra=extra))
    acked = d.get("acked")
    if acked is not None:
        out.append(_base(record, COMM_TXCONFIRM, dev_eui, dt, app_eui=app_eui, reference=acked.get("reference", ""),
                         gateway_euis=euis, extra={"command_id": acked["command_id"]}))
    if "failed" in d:  # requests that cannot fit this device's data rate
        out.extend(failed_comms(record))
    if downlink is not None:
        out.extend(handed_to_gateway(record, dev_eui, downlink, dt))
    if downlink is not None and downlink.get("command_id"):
        out.append(_base(record, COMM_TX, dev_eui, dt, app_eui=app_eui, port=downlink.get("port"),
                         gateway_euis=(downlink["gateway"],), payload=bytes.fromhex(downlink.get("payload", "")),
                         command="TX", reference=downlink.get("reference", ""),
                         confirmation=downlink["confirmed"], window=downlink.get("asked_window", DEFAULT_TX_WINDOW)))
    return out


def mac_extra(d: dict[str, Any]) -> dict[str, Any]:
    """The MAC exchange of an uplink as Extra fields: what the device said, what went back to it,
    and its battery (0 external power, 1-254, 255 unknown) and link margin (dB) when it reported them."""
    extra: dict[str, Any] = {}
    if "mac_up" in d:
        extra["mac_up"] = _compact(d["mac_up"])
        for command in d["mac_up"]:
            if command["cmd"] == "DevStatusAns":
                extra["battery"], extra["margin"] = command["battery"], command["margin"]
    if "mac_error" in d:
        extra["mac_error"] = d["mac_error"]
    if d.get("adr_ack_req"):
        extra["adr_ack_req"] = True
    downlink = d.get("downlink")
    if downlink is not None and "mac" in downlink:
        extra["mac_down"] = _compact(downlink["mac"])
    return extra


def _compact(commands: list[dict[str, Any]]) -> str:
    """Commands as the compact JSON Extra shows nested values in (rendered here, by orjson: fast)."""
    return orjson.dumps(commands, option=orjson.OPT_SORT_KEYS).decode()


def gateway_tx(record: Record, dev_eui: str, downlink: dict[str, Any], dt: datetime | None = None,
               kind: str = "data") -> Communication:
    """comm_gwtx: a downlink handed to one gateway, with where and when it goes out on the air.
    Payload is the FRMPayload in clear (the encrypted PHY is not journaled); an ACK or MAC-only
    downlink has none."""
    extra = {"kind": kind, "window": downlink.get("window"), "frequency": downlink.get("freq"),
             "datr": downlink.get("datr"), "tmst": downlink.get("tmst"), "token": downlink.get("token"),
             "size": downlink.get("size"), "fcnt": downlink.get("fcnt"), "via": downlink.get("via")}
    for flag in ("confirmed", "ack"):
        if flag in downlink:
            extra[flag] = downlink[flag]
    return _base(record, COMM_GWTX, dev_eui, dt, port=downlink.get("port"), gateway_euis=(downlink["gateway"],),
                 payload=bytes.fromhex(downlink.get("payload") or ""), reference=downlink.get("reference") or "",
                 extra=extra)


def handed_to_gateway(record: Record, dev_eui: str, downlink: dict[str, Any], dt: datetime | None = None,
                      kind: str = "data") -> list[Communication]:
    """comm_gwtx, then comm_txinfo: gatewayd's gateway layer (UDP or Station) took the downlink for
    that gateway. In ResIOT the base station server is a separate program that reports
    this step; in gatewayd it is the same process, so both come from the same record."""
    handed = gateway_tx(record, dev_eui, downlink, dt, kind)
    info = _base(record, COMM_TXINFO, dev_eui, dt, port=downlink.get("port"), gateway_euis=handed.gateway_euis,
                 reference=downlink.get("reference") or "",
                 extra={"kind": kind, "token": downlink.get("token"), "command_id": downlink.get("command_id")})
    return [handed, info]


def send_confirm(record: Record, dev_eui: str, reference: str, error: str, gateway: str | None = None,
                 **extra: Any) -> Communication:
    """comm_txsendconfirm: how a downlink request ended on gatewayd's side (Error "" = sent)."""
    return _base(record, COMM_TXSENDCONFIRM, dev_eui, gateway_euis=(gateway,) if gateway else (),
                 reference=reference, error=error, extra=extra)


def class_c_comms(record: Record) -> Iterable[Communication]:
    d = record.data
    downlink = d["downlink"]
    yield from handed_to_gateway(record, d["dev_eui"], downlink)
    yield _base(record, COMM_TX, d["dev_eui"], port=downlink.get("port"), gateway_euis=(downlink["gateway"],),
                payload=bytes.fromhex(downlink.get("payload", "")), command="TX",
                reference=downlink.get("reference", ""), confirmation=downlink["confirmed"],
                window=downlink.get("asked_window", DEFAULT_TX_WINDOW))


def foreign_comms(record: Record) -> list[Communication]:
    """A frame of a device that is not ours, one comm_gwrx per gateway copy: DevEui is unknown (""),
    Extra says Mine "false" and carries the DevAddr and why it is not ours."""
    d = record.data
    radio = _radio(d["datr"], d["freq"])
    phy = bytes.fromhex(d["phy"])
    about = {"devaddr": d["dev_addr"], "fcnt16": d["fcnt"], "mtype": d["mtype"], "reason": d["reason"]}
    return [_base(record, COMM_GWRX, "", gateway_euis=(copy["eui"],), payload=phy,
                  extra={**_copy_extra(copy, radio, mine=False), **about})
            for copy in d["gateways"]]


def join_comms(record: Record) -> Iterable[Communication]:
    d = record.data
    accepted = record.type == "lorawan.join"
    copies = d["gateways"]
    extra: dict[str, Any] = {
        "accepted": accepted, "devnonce": d["dev_nonce"], **_radio(d["datr"], d["freq"]),
        "rssi": copies[0].get("rssi") if copies else None, "snr": copies[0].get("snr") if copies else None,
    }
    if accepted:
        extra["devaddr"] = d["dev_addr"]
    else:
        extra["reason"] = d.get("reason", "")
    yield _base(record, COMM_JOIN, d["dev_eui"], app_eui=d.get("app_eui", ""),
                gateway_euis=tuple(c["eui"] for c in copies), extra=extra)
    if accepted and d.get("join_accept"):
        yield from handed_to_gateway(record, d["dev_eui"], d["join_accept"], kind="join_accept")


def gateway_alive_comms(record: Record) -> Iterable[Communication]:
    d = record.data
    extra: dict[str, Any] = {"kind": d.get("kind", ""), "addr": d.get("addr", "")}
    extra.update(d.get("stat") or {})
    yield _base(record, COMM_GWALIVE, d["eui"], gateway_euis=(d["eui"],), extra=extra)


def tx_ack_comms(record: Record) -> Iterable[Communication]:
    d = record.data
    error = d.get("error", "NONE")
    extra = {"kind": d.get("kind", ""), "token": d.get("token")}
    if d.get("command_id"):
        extra["command_id"] = d["command_id"]
    yield _base(record, COMM_TXSENDACK, d.get("dev_eui") or d["gateway"], gateway_euis=(d["gateway"],),
                reference=d.get("reference", ""), error="" if error == "NONE" else error, extra=extra)
    if d.get("command_id"):  # a downlink request's outcome; a refused one goes back into its queue
        yield send_confirm(record, d.get("dev_eui") or d["gateway"], d.get("reference", ""),
                           "" if error == "NONE" else error, d["gateway"], command_id=d["command_id"],
                           outcome="sent" if error == "NONE" else "queued again" if "command" in d else "failed")


def failed_comms(record: Record) -> list[Communication]:
    """Downlink requests given up (a class C device no gateway could reach...): comm_txsendconfirm."""
    d = record.data
    return [send_confirm(record, d["dev_eui"], failed.get("reference", ""), failed.get("reason") or "failed",
                         command_id=failed["command_id"], outcome="failed") for failed in d.get("failed", ())]


# -- actions ---------------------------------------------------------------------------------------------
def _action(record: Record, action_type: str, target: str, actor: str = "lorawan", **details: Any) -> Action:
    return Action(action_type, actor, target, {k: v for k, v in details.items() if v is not None},
                  record_time(record), record.seq)


def gateway_registry_action(record: Record) -> Action:
    d = record.data
    actor = d.get("actor") or ("auto" if d.get("source") == "auto" else "operator")
    return _action(record, record.type, d["eui"], actor, name=d.get("name"), source=d.get("source"),
                   addr=d.get("addr"))


def gateway_online_action(record: Record) -> Action | None:
    if not record.data.get("came_online"):
        return None
    return _action(record, "gateway.online", record.data["eui"], addr=record.data.get("addr"))


def gateway_offline_action(record: Record) -> Action:
    return _action(record, "gateway.offline", record.data["eui"], last_seen=record.data.get("last_seen"))


def joined_action(record: Record) -> Action:
    d = record.data
    return _action(record, "lorawan.joined", d["dev_eui"], device_id=d["device_id"], dev_addr=d["dev_addr"])


def join_refused_action(record: Record) -> Action:
    d = record.data
    return _action(record, "lorawan.join_refused", d["dev_eui"], device_id=d["device_id"],
                   reason=d.get("reason"), dev_nonce=d["dev_nonce"])


def queued_action(record: Record) -> Action:
    d = record.data
    return _action(record, "command.queued", d["dev_eui"], d.get("source") or "operator", command_id=d["command_id"],
                   reference=d.get("reference"), port=d["port"], confirm=d.get("confirm"), connector=CONNECTOR)


def class_c_sent_action(record: Record) -> Action:
    downlink = record.data["downlink"]
    return _action(record, "command.sent", record.data["dev_eui"], command_id=downlink["command_id"],
                   reference=downlink.get("reference"), fcnt_down=downlink["fcnt"], connector=CONNECTOR,
                   device_class="C")


def class_c_failed_action(record: Record) -> Action:
    first = record.data["failed"][0]
    return _action(record, "command.failed", record.data["dev_eui"], command_id=first["command_id"],
                   reference=first.get("reference"), reason=first.get("reason"), connector=CONNECTOR)


def settings_action(record: Record) -> Action:
    d = record.data
    return _action(record, "lorawan.device_settings", d["dev_eui"], d.get("actor") or "operator", **d["settings"])


def queue_cleared_action(record: Record) -> Action:
    d = record.data
    return _action(record, "lorawan.queue_cleared", d["dev_eui"], d.get("actor") or "operator",
                   dropped=d.get("dropped"))


def keys_shown_action(record: Record) -> Action:
    return _action(record, "lorawan.keys_shown", record.data["dev_eui"], record.data.get("actor") or "operator")


def command_progress_action(record: Record) -> Action | None:
    """Command state changes riding on an uplink (one action per record: the most telling one)."""
    d = record.data
    if d.get("acked"):
        return _action(record, "command.acknowledged", d["dev_eui"], command_id=d["acked"]["command_id"],
                       reference=d["acked"].get("reference"), connector=CONNECTOR)
    unacked = d.get("unacked")
    if unacked and not unacked.get("requeued"):
        return _action(record, "command.failed", d["dev_eui"], command_id=unacked["command_id"],
                       reference=unacked.get("reference"), reason="not acknowledged by the device",
                       connector=CONNECTOR)
    if d.get("failed"):
        first = d["failed"][0]
        return _action(record, "command.failed", d["dev_eui"], command_id=first["command_id"],
                       reference=first.get("reference"), reason=first.get("reason"), connector=CONNECTOR)
    downlink = d.get("downlink")
    if downlink and downlink.get("command_id"):
        return _action(record, "command.sent", d["dev_eui"], command_id=downlink["command_id"],
                       reference=downlink.get("reference"), fcnt_down=downlink["fcnt"], connector=CONNECTOR)
    return None


COMMS = Comms(
    communications={
        "lorawan.uplink": uplink_comms,
        "lorawan.downlink": class_c_comms,
        "lorawan.foreign_uplink": foreign_comms,
        "lorawan.join": join_comms,
        "lorawan.join_refused": join_comms,
        "gateway.alive": gateway_alive_comms,
        "gateway.tx_ack": tx_ack_comms,
        "lorawan.downlink_failed": failed_comms,
    },
    actions={
        "gateway.added": gateway_registry_action,
        "gateway.removed": gateway_registry_action,
        "gateway.alive": gateway_online_action,
        "gateway.offline": gateway_offline_action,
        "lorawan.join": joined_action,
        "lorawan.join_refused": join_refused_action,
        "lorawan.downlink_queued": queued_action,
        "lorawan.downlink": class_c_sent_action,
        "lorawan.downlink_failed": class_c_failed_action,
        "lorawan.device_settings": settings_action,
        "lorawan.queue_cleared": queue_cleared_action,
        "lorawan.keys_shown": keys_shown_action,
        "lorawan.uplink": command_progress_action,
    },
    tx_handlers=(LorawanTxHandler(),),
)

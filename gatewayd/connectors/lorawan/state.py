"""LoRaWAN: packet forwarders (gateways) and device sessions, counters, nonces, downlink queues.

Record types applied here:
- devices (from the registry): device.created (with "lorawan") | deleted | enabled | disabled
- gateways: gateway.added | removed | alive | offline | tx_ack
- network: lorawan.uplink | join | downlink_queued | queue_cleared | downlink (class C) | device_settings

Each session holds its MAC state ("mac", see connectors/lorawan/mac.py), changed by the same
`apply_uplink`/`apply_downlink` the network uses to decide, and the operator's "settings" (class,
receive windows, duty cycle) that MAC requests bring the device to.

Counters move only by applying the record of the uplink, join or downlink that used them: an
uplink costs exactly one record. Keys are held sealed (see gatewayd/secretbox.py), never in clear.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from . import mac
from ...journal.record import Record

MAX_DEV_NONCES = 1024  # DevNonces remembered per device (oldest forgotten first)
SETTING_NAMES = ("class", "rx1_dr_offset", "rx2_dr", "rx2_freq", "rx1_delay", "max_duty_cycle")


def default_settings(device_class: str = "A") -> dict[str, Any]:
    """What the operator chose for a device; None = the network's default."""
    return {"class": device_class, "rx1_dr_offset": None, "rx2_dr": None, "rx2_freq": None, "rx1_delay": None,
            "max_duty_cycle": None}


def _unix(ts: str) -> float:
    return datetime.fromisoformat(ts[:-1]).replace(tzinfo=timezone.utc).timestamp()


class LorawanState:
    name = "lorawan"

    def __init__(self) -> None:
        self.gateways: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}  # DevEUI (lower-case hex) -> session
        self.by_addr: dict[str, list[str]] = {}  # DevAddr (hex) -> DevEUIs using it
        self.by_device_id: dict[str, str] = {}

    # -- lookups ------------------------------------------------------------------------------------
    def device(self, dev_eui: str) -> dict[str, Any] | None:
        return self.devices.get(dev_eui) if isinstance(dev_eui, str) else None

    def gateway(self, eui: str) -> dict[str, Any] | None:
        return self.gateways.get(eui) if isinstance(eui, str) else None

    def sessions_for(self, dev_addr: str) -> list[dict[str, Any]]:
        return [self.devices[d] for d in self.by_addr.get(dev_addr, ())]

    def appliers(self):
        return {
            "device.created": self._device_created,
            "device.deleted": self._device_deleted,
            "device.enabled": self._device_enabled,
            "device.disabled": self._device_disabled,
            "gateway.added": self._gateway_added,
            "gateway.removed": self._gateway_removed,
            "gateway.alive": self._gateway_alive,
            "gateway.offline": self._gateway_offline,
            "gateway.tx_ack": self._gateway_tx_ack,
            "lorawan.uplink": self._uplink,
            "lorawan.foreign_uplink": self._foreign_uplink,
            "lorawan.join": self._join,
            "lorawan.downlink_queued": self._downlink_queued,
            "lorawan.queue_cleared": self._queue_cleared,
            "lorawan.downlink": self._class_c_downlink,
            "lorawan.downlink_failed": self._downlink_failed,
            "lorawan.device_settings": self._device_settings,
        }

    # -- devices ------------------------------------------------------------------------------------
    def _index(self, session: dict[str, Any]) -> None:
        addr = session.get("dev_addr")
        if addr:
            users = self.by_addr.setdefault(addr, [])
            if session["dev_eui"] not in users:
                users.append(session["dev_eui"])

    def _unindex(self, session: dict[str, Any]) -> None:
        addr = session.get("dev_addr")
        users = self.by_addr.get(addr) if addr else None
        if users and session["dev_eui"] in users:
            users.remove(session["dev_eui"])
            if not users:
                del self.by_addr[addr]

    def _device_created(self, record: Record) -> None:
        lorawan = record.data.get("lorawan")
        if not isinstance(lorawan, dict) or not lorawan.get("dev_eui"):
            return
        dev_eui = lorawan["dev_eui"]
        old = self.devices.get(dev_eui)
        if old is not None:
            self._unindex(old)
            self.by_device_id.pop(old["device_id"], None)
        session = {
            "dev_eui": dev_eui,
            "device_id": record.data["device_id"],
            "name": record.data.get("name", ""),
            "activation": lorawan.get("activation", "abp"),
            "app_eui": lorawan.get("app_eui") or "",
            "app_key": lorawan.get("app_key"),
            "dev_addr": lorawan.get("dev_addr"),
            "nwk_s_key": lorawan.get("nwk_s_key"),
            "app_s_key": lorawan.get("app_s_key"),
            "relax_fcnt": bool(lorawan.get("relax_fcnt")),
            "enabled": True,
            "fcnt_up": 0,  # the next uplink counter expected
            "fcnt_down": 0,  # the next downlink counter to use
            "dev_nonces": [],
            "joined": None,
            "last_seen": None,
            "last_dr": None,
            "last_freq": None,
            "last_gateway": None,
            "uplinks": 0,
            "queue": [],
            "awaiting_ack": None,
            "mac": mac.new_state(),
            "settings": default_settings(lorawan.get("class") or "A"),
        }
        self.devices[dev_eui] = session
        self.by_device_id[session["device_id"]] = dev_eui
        self._index(session)

    def _by_id(self, record: Record) -> dict[str, Any] | None:
        dev_eui = self.by_device_id.get(record.data.get("device_id"))
        return self.devices.get(dev_eui) if dev_eui else None

    def _device_deleted(self, record: Record) -> None:
        session = self._by_id(record)
        if session is not None:
            self._unindex(session)
            del self.devices[session["dev_eui"]]
            del self.by_device_id[session["device_id"]]

    def _device_enabled(self, record: Record) -> None:
        session = self._by_id(record)
        if session is not None:
            session["enabled"] = True

    def _device_disabled(self, record: Record) -> None:
        session = self._by_id(record)
        if session is not None:
            session["enabled"] = False

    # -- gateways -----------------------------------------------------------------------------------
    def _gateway_added(self, record: Record) -> None:
        data = record.data
        known = self.gateways.get(data["eui"])
        if known is not None:
            known["name"] = data.get("name", known["name"])
            known["source"] = data.get("source", known["source"])
            if "token_hash" in data:
                known["token_hash"] = data["token_hash"]
            return
        self.gateways[data["eui"]] = {
            "eui": data["eui"], "name": data.get("name", ""), "source": data.get("source", "operator"),
            "added": record.ts, "last_seen": None, "online": False, "addr": None, "version": None,
            "stat": None, "stat_time": None, "uplinks": 0, "foreign": 0, "downlinks": 0,
            "tx_errors": 0, "connection": None, "token_hash": data.get("token_hash"),
        }

    def _gateway_removed(self, record: Record) -> None:
        self.gateways.pop(record.data["eui"], None)

    def _gateway_alive(self, record: Record) -> None:
        gateway = self.gateways.get(record.data["eui"])
        if gateway is None:
            return
        gateway["last_seen"] = record.ts
        gateway["online"] = True
        gateway["connection"] = record.data.get("via", "udp")  # udp | station
        if record.data.get("station"):
            gateway["station"] = record.data["station"]
        if record.data.get("addr"):
            gateway["addr"] = record.data["addr"]
        if record.data.get("version"):
            gateway["version"] = record.data["version"]
        if record.data.get("stat") is not None:
            gateway["stat"] = record.data["stat"]
            gateway["stat_time"] = record.ts

    def _gateway_offline(self, record: Record) -> None:
        gateway = self.gateways.get(record.data["eui"])
        if gateway is not None:
            gateway["online"] = False

    def _gateway_tx_ack(self, record: Record) -> None:
        data = record.data
        if data.get("error", "NONE") == "NONE":
            return
        gateway = self.gateways.get(data["gateway"])
        if gateway is not None:
            gateway["tx_errors"] += 1
        command = data.get("command")
        session = self.devices.get(data.get("dev_eui"))
        if command is None or session is None:
            return
        # The gateway did not send it: it goes back to the head of the queue for the next uplink.
        awaiting = session["awaiting_ack"]
        if awaiting is not None and awaiting["command_id"] == command["command_id"]:
            session["awaiting_ack"] = None
        if all(c["command_id"] != command["command_id"] for c in session["queue"]):
            session["queue"].insert(0, dict(command))

    # -- network ------------------------------------------------------------------------------------
    def _foreign_uplink(self, record: Record) -> None:
        """Frames of devices that are not ours, as far as they were recorded (see foreign_frames_per_second)."""
        for copy in record.data["gateways"]:
            gateway = self.gateways.get(copy["eui"])
            if gateway is not None:
                gateway["foreign"] = gateway.get("foreign", 0) + 1
                gateway["last_seen"] = record.ts

    def _uplink(self, record: Record) -> None:
        data = record.data
        for copy in data["gateways"]:
            gateway = self.gateways.get(copy["eui"])
            if gateway is not None:
                gateway["uplinks"] += 1
                gateway["last_seen"] = record.ts
        session = self.devices.get(data["dev_eui"])
        if session is None:
            return
        session["last_seen"] = record.ts
        session["last_dr"] = data["dr"]
        session["last_freq"] = data["freq"]
        session["last_gateway"] = data["gateways"][0]["eui"] if data["gateways"] else None
        mac_state = session["mac"]
        if not data.get("duplicate"):
            session["fcnt_up"] = data["fcnt"] + 1
            session["uplinks"] += 1
            adr = data["adr"]
            mac.apply_uplink(mac_state, data["fcnt"], mac.best_snr(data["gateways"]) if adr else None, adr,
                             data.get("mac_up"))
        if data.get("acked") is not None or data.get("unacked") is not None:
            awaiting = session["awaiting_ack"]
            session["awaiting_ack"] = None
            unacked = data.get("unacked")
            if unacked is not None and unacked.get("requeued") and awaiting is not None:
                session["queue"].insert(0, awaiting)
        if data.get("failed"):
            failed = {f["command_id"] for f in data["failed"]}
            session["queue"] = [c for c in session["queue"] if c["command_id"] not in failed]
        downlink = data.get("downlink")
        if downlink is not None:
            self._downlink_sent(session, downlink, record.ts)

    def _class_c_downlink(self, record: Record) -> None:
        session = self.devices.get(record.data["dev_eui"])
        if session is not None:
            self._downlink_sent(session, record.data["downlink"], record.ts)

    def _downlink_failed(self, record: Record) -> None:
        session = self.devices.get(record.data["dev_eui"])
        if session is not None:
            failed = {f["command_id"] for f in record.data["failed"]}
            session["queue"] = [c for c in session["queue"] if c["command_id"] not in failed]

    def _downlink_sent(self, session: dict[str, Any], downlink: dict[str, Any], ts: str) -> None:
        session["fcnt_down"] = downlink["fcnt"] + 1
        if downlink.get("mac"):
            mac.apply_downlink(session["mac"], downlink["mac"], _unix(ts))
        gateway = self.gateways.get(downlink["gateway"])
        if gateway is not None:
            gateway["downlinks"] += 1
        command_id = downlink.get("command_id")
        if not command_id:
            return
        queue = session["queue"]
        for i, command in enumerate(queue):
            if command["command_id"] == command_id:
                sent = queue.pop(i)
                if sent.get("confirm"):
                    session["awaiting_ack"] = dict(sent, attempts=sent.get("attempts", 0) + 1)
                break

    def _join(self, record: Record) -> None:
        data = record.data
        session = self.devices.get(data["dev_eui"])
        if session is None:
            return
        self._unindex(session)
        session.update(dev_addr=data["dev_addr"], nwk_s_key=data["nwk_s_key"], app_s_key=data["app_s_key"],
                       fcnt_up=0, fcnt_down=0, joined=record.ts, last_seen=record.ts, last_dr=data["dr"],
                       last_freq=data["freq"], mac=mac.new_state(cflist=bool(data.get("cflist"))))
        nonces = session["dev_nonces"]
        nonces.append(data["dev_nonce"])
        del nonces[:-MAX_DEV_NONCES]
        if session["awaiting_ack"] is not None:
            # Never acknowledged under the old session: it goes out again under the new one.
            session["queue"].insert(0, session["awaiting_ack"])
            session["awaiting_ack"] = None
        self._index(session)

    def _downlink_queued(self, record: Record) -> None:
        session = self.devices.get(record.data["dev_eui"])
        if session is None:
            return
        data = record.data
        session["queue"].append({
            "command_id": data["command_id"], "port": data["port"], "payload": data["payload"],
            "confirm": bool(data.get("confirm")), "reference": data.get("reference", ""),
            "source": data.get("source", ""), "queued": record.ts, "attempts": 0,
        })
        if data.get("window"):
            session["queue"][-1]["window"] = data["window"]

    def _device_settings(self, record: Record) -> None:
        session = self.devices.get(record.data["dev_eui"])
        if session is not None:
            changes = record.data["settings"]
            session["settings"].update({k: changes[k] for k in SETTING_NAMES if k in changes})

    def _queue_cleared(self, record: Record) -> None:
        session = self.devices.get(record.data["dev_eui"])
        if session is not None:
            session["queue"] = []
            session["awaiting_ack"] = None

    # -- snapshot -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"gateways": self.gateways, "devices": self.devices}

    def restore(self, data: dict[str, Any]) -> None:
        self.gateways = data.get("gateways", {})
        self.devices = data.get("devices", {})
        self.by_addr = {}
        self.by_device_id = {}
        for session in self.devices.values():
            session.setdefault("mac", mac.new_state())
            session.setdefault("settings", default_settings())
            session.setdefault("last_gateway", None)
            self.by_device_id[session["device_id"]] = session["dev_eui"]
            self._index(session)

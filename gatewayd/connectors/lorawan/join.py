"""Over-the-air activation (LoRaWAN 1.0.x join): check, refuse replays, allocate, derive, answer.

The `lorawan.join` record (new DevAddr, sealed session keys, the DevNonce) is durable before the
join-accept leaves: a device never holds a session the server could forget. A DevNonce the device
used before is refused and journaled (`lorawan.join_refused`); join-requests with a bad MIC are
only counted (anyone can send those).
"""

from __future__ import annotations

import secrets
from typing import Any

from . import frames as lorawan
from . import crypto
from .dedup import Pending
from .uplink import Decision, radio_fields

NWK_ADDR_BITS = 25


class Joins:
    def __init__(self, service):
        self.service = service
        self.core = service.core

    @property
    def net_id(self) -> int:
        return int(self.core.settings.lorawan.net_id, 16)

    def allocate_dev_addr(self) -> str:
        """DevAddr = NwkID (the NetID's 7 low bits) | a random, unused 25-bit NwkAddr."""
        used = self.core.state.lorawan.by_addr
        taken = self.service.network.allocated_in_pass
        prefix = (self.net_id & 0x7F) << NWK_ADDR_BITS
        for _ in range(64):
            addr = lorawan.dev_addr_hex(prefix | secrets.randbits(NWK_ADDR_BITS))
            if addr not in used and addr not in taken:
                taken.add(addr)
                return addr
        raise RuntimeError("no free DevAddr found in 64 tries")

    def decide(self, pending: Pending, now: float) -> Decision | None:
        jr: lorawan.JoinRequest = pending.frame
        network = self.service.network
        session = self.core.state.lorawan.device(jr.dev_eui)
        if session is None or session["activation"] != "otaa" or not session.get("app_key"):
            network.drop("unknown_dev_eui", jr.dev_eui, "join-request from unknown OTAA DevEUI %s dropped", jr.dev_eui)
            return None
        if not session["enabled"]:
            network.drop("device_disabled", jr.dev_eui, "join-request from disabled device %s dropped", jr.dev_eui)
            return None
        if session["app_eui"] not in ("", "0000000000000000", jr.app_eui):
            network.drop("app_eui_mismatch", jr.dev_eui, "join-request from %s dropped: AppEUI %s, expected %s",
                         jr.dev_eui, jr.app_eui, session["app_eui"])
            return None
        app_key = self.service.keys.open(jr.dev_eui, "app_key", session["app_key"])
        if not lorawan.verify_join_request(jr, app_key):
            network.drop("bad_mic", jr.dev_eui, "join-request from %s dropped: MIC does not match its AppKey",
                         jr.dev_eui)
            return None
        copies, radio = radio_fields(pending)
        base = {"dev_eui": jr.dev_eui, "device_id": session["device_id"], "app_eui": jr.app_eui,
                "dev_nonce": jr.dev_nonce, **radio}
        if jr.dev_nonce in session["dev_nonces"]:
            network.drop("dev_nonce_replay", jr.dev_eui, "join-request from %s refused: DevNonce %d was used before",
                         jr.dev_eui, jr.dev_nonce)
            self.core.metrics.inc("gatewayd_lorawan_joins_total", result="refused")
            return Decision("lorawan.join_refused", dict(base, reason="dev_nonce_replay"))
        route = self.service.downlinks.route(copies, pending.dr, now, join=True)
        if route is None:
            network.drop("no_downlink_path", jr.dev_eui, "join-request from %s not answered: no gateway can "
                         "transmit in time (no recent PULL_DATA)", jr.dev_eui)
            return None
        copy, path, window = route
        dev_addr = self.allocate_dev_addr()
        app_nonce = secrets.randbits(24)
        nwk, app = crypto.derive_session_keys(app_key, app_nonce, self.net_id, jr.dev_nonce)
        keys = self.service.keys
        region = self.service.region
        cflist = region.cflist(self.service.sub_band)
        if cflist is not None and not region.fixed_channels and not self.core.settings.lorawan.extra_channels:
            cflist = None
        accept = lorawan.build_join_accept(app_key, app_nonce, self.net_id, lorawan.parse_dev_addr(dev_addr),
                                           dl_settings=region.rx2_dr & 0x0F, rx_delay=self.service.rx1_delay,
                                           cflist=cflist)
        track = {"kind": "join_accept", "dev_eui": jr.dev_eui, "device_id": session["device_id"],
                 "command_id": None, "reference": ""}
        transmission, where = self.service.downlinks.transmission(copy, path, window, accept, track)
        data: dict[str, Any] = dict(
            base, dev_addr=dev_addr, app_nonce=app_nonce, net_id=self.core.settings.lorawan.net_id.lower(),
            nwk_s_key=keys.seal(jr.dev_eui, "nwk_s_key", nwk), app_s_key=keys.seal(jr.dev_eui, "app_s_key", app),
            rx_delay=self.service.rx1_delay, rx2_dr=region.rx2_dr, join_accept=where)
        if cflist is not None:
            data["cflist"] = cflist.hex()
        self.core.metrics.inc("gatewayd_lorawan_joins_total", result="accepted")
        return Decision("lorawan.join", data, transmission)

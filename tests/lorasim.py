"""Test-side LoRaWAN device and packet-forwarder simulator. Pure: it builds and reads bytes,
the test moves them (directly or over real UDP)."""

from __future__ import annotations

from gatewayd.connectors.lorawan import mac_commands
from gatewayd.connectors.lorawan.mac_commands import MacCommand
from gatewayd.connectors.lorawan import gwmp, frames as lorawan
from gatewayd.connectors.lorawan import crypto
from gatewayd.connectors.lorawan import packets
from gatewayd.errors import ProtocolError
from gatewayd.connectors.lorawan.frames import MType


def _key(key: bytes | str | None) -> bytes | None:
    return lorawan.parse_key(key) if isinstance(key, str) else key


class SimDevice:
    """A class A end device: ABP when given a session, OTAA when given an AppKey (then call
    `join_request` and hand the answer to `decode_downlink` or `accept_join`)."""

    def __init__(
        self,
        *,
        dev_addr: int | str | None = None,
        nwk_s_key: bytes | str | None = None,
        app_s_key: bytes | str | None = None,
        fcnt: int = 0,
        dev_eui: str | None = None,
        app_eui: str | None = None,
        app_key: bytes | str | None = None,
    ):
        self.dev_addr = lorawan.parse_dev_addr(dev_addr) if isinstance(dev_addr, str) else dev_addr
        self.nwk_s_key = _key(nwk_s_key)
        self.app_s_key = _key(app_s_key)
        self.fcnt = fcnt  # next uplink counter
        self.fcnt_down = 0  # next expected downlink counter
        self.dev_eui = dev_eui
        self.app_eui = app_eui
        self.app_key = _key(app_key)
        self.dev_nonce: int | None = None
        # MAC layer, as a compliant device keeps it: what the network set, and the answers it owes.
        self.dr = 0
        self.tx_power = 0
        self.nb_trans = 1
        self.battery = 200
        self.margin = 7
        self.mac_answers: list[MacCommand] = []
        self.mac_heard: list[MacCommand] = []  # every MAC command received, in order

    @classmethod
    def abp(
        cls, dev_addr: int | str, nwk_s_key: bytes | str, app_s_key: bytes | str, fcnt: int = 0
    ):
        return cls(dev_addr=dev_addr, nwk_s_key=nwk_s_key, app_s_key=app_s_key, fcnt=fcnt)

    @classmethod
    def otaa(cls, dev_eui: str, app_eui: str, app_key: bytes | str):
        return cls(dev_eui=dev_eui, app_eui=app_eui, app_key=app_key)

    @property
    def joined(self) -> bool:
        return self.dev_addr is not None and self.nwk_s_key is not None

    def join_request(self, dev_nonce: int) -> bytes:
        assert self.app_key is not None, "not an OTAA device"
        self.dev_nonce = dev_nonce
        return lorawan.build_join_request(self.app_key, self.app_eui, self.dev_eui, dev_nonce)

    def accept_join(self, phy: bytes) -> dict:
        assert self.app_key is not None and self.dev_nonce is not None, "no join request sent"
        accept = lorawan.decode_join_accept(self.app_key, phy)
        self.nwk_s_key, self.app_s_key = crypto.derive_session_keys(
            self.app_key, accept["app_nonce"], accept["net_id"], self.dev_nonce
        )
        self.dev_addr = accept["dev_addr"]
        self.fcnt = self.fcnt_down = 0
        return {"mtype": MType.JOIN_ACCEPT.label, **accept}

    def uplink(
        self,
        port: int | None,
        payload: bytes = b"",
        confirmed: bool = False,
        ack: bool = False,
        *,
        fcnt: int | None = None,
        f_opts: bytes | None = None,
        adr: bool = False,
        adr_ack_req: bool = False,
    ) -> bytes:
        """PHYPayload of the next uplink; `fcnt` forces a counter (retransmission, replay).
        Without `f_opts`, the MAC answers the device owes go in FOpts."""
        assert self.joined, "device has no session"
        count = self.fcnt if fcnt is None else fcnt
        if f_opts is None:
            f_opts = mac_commands.encode_all(self.mac_answers) if port != 0 else b""
            self.mac_answers = []
        phy = lorawan.build_data_frame(
            MType.CONFIRMED_DATA_UP if confirmed else MType.UNCONFIRMED_DATA_UP,
            self.dev_addr,
            count,
            self.nwk_s_key,
            self.app_s_key,
            f_port=port,
            payload=payload,
            ack=ack,
            adr=adr,
            adr_ack_req=adr_ack_req,
            f_opts=f_opts,
        )
        if fcnt is None:
            self.fcnt += 1
        return phy

    def decode_downlink(self, phy: bytes) -> dict:
        """Read a downlink as the device would: a join-accept sets up the session, a data frame
        is checked (DevAddr, MIC) and decrypted. Bad frames raise ProtocolError."""
        phy = bytes(phy)
        if phy and phy[0] >> 5 == MType.JOIN_ACCEPT:
            return self.accept_join(phy)
        frame = lorawan.parse_phy(phy)
        if frame.uplink:
            raise ProtocolError("bad_mtype", f"{frame.mtype.label} is not a downlink")
        assert self.joined, "device has no session"
        if frame.dev_addr != self.dev_addr:
            raise ProtocolError("bad_dev_addr", f"downlink for {frame.dev_addr_hex}")
        fcnt32 = lorawan.reconstruct_fcnt(frame.f_cnt16, self.fcnt_down)
        if not lorawan.verify_data_mic(frame, self.nwk_s_key, fcnt32):
            raise ProtocolError("bad_mic", "downlink MIC does not match")
        self.fcnt_down = max(self.fcnt_down, fcnt32 + 1)
        payload = lorawan.decrypt_payload(frame, self.nwk_s_key, self.app_s_key, fcnt32)
        mac = frame.f_opts or (payload if frame.f_port == 0 else b"")
        commands, error = mac_commands.decode(mac, uplink=False)
        if error:
            raise ProtocolError("bad_mac", error)
        self.take_mac(commands)
        return {
            "mac": commands,
            "mtype": frame.mtype.label,
            "confirmed": frame.confirmed,
            "ack": frame.ack,
            "adr": frame.adr,
            "f_pending": frame.f_pending,
            "f_cnt": fcnt32,
            "f_opts": frame.f_opts,
            "f_port": frame.f_port,
            "payload": payload,
        }

    def take_mac(self, commands: list[MacCommand]) -> None:
        """Apply the network's MAC requests and owe their answers (all accepted)."""
        self.mac_heard += commands
        for command in commands:
            f = command.fields
            if command.name == "LinkADRReq":
                self.dr, self.tx_power, self.nb_trans = f["data_rate"], f["tx_power"], f["nb_trans"] or 1
                self._owe("LinkADRAns", power_ack=True, data_rate_ack=True, channel_mask_ack=True)
            elif command.name == "DevStatusReq":
                self._owe("DevStatusAns", battery=self.battery, margin=self.margin)
            elif command.name == "NewChannelReq":
                self._owe("NewChannelAns", data_rate_range_ok=True, channel_frequency_ok=True)
            elif command.name == "RXParamSetupReq":
                self._owe("RXParamSetupAns", rx1_dr_offset_ack=True, rx2_data_rate_ack=True, channel_ack=True)
            elif command.name in ("RXTimingSetupReq", "DutyCycleReq", "TxParamSetupReq"):
                self._owe(command.name[:-3] + "Ans")

    def _owe(self, name: str, **fields) -> None:
        self.mac_answers.append(MacCommand(name, fields))


class SimGateway:
    """A Semtech UDP packet forwarder: builds its datagrams with plausible radio metadata.

    `tmst` is the gateway's microsecond counter; each PUSH_DATA advances it by `tmst_step`.
    """

    def __init__(
        self, eui: str, version: int = 2, tmst: int = 1_000_000, tmst_step: int = 1_000_000
    ):
        self.eui = lorawan.eui_to_hex(lorawan.hex_to_eui(eui))
        self.version = version
        self.tmst = tmst
        self.tmst_step = tmst_step
        self.last_token = 0

    def _token(self) -> int:
        self.last_token = (self.last_token + 1) & 0xFFFF
        return self.last_token

    def rx_packet(
        self,
        phy: bytes,
        *,
        freq: float = 868.1,
        datr: str = "SF7BW125",
        rssi: int = -57,
        lsnr: float = 9.5,
        tmst: int | None = None,
        stat: int = 1,
    ) -> packets.RxPacket:
        return packets.RxPacket(
            tmst=self.tmst if tmst is None else tmst,
            chan=0,
            rfch=0,
            freq=freq,
            stat=stat,
            modu="LORA",
            datr=datr,
            codr="4/5",
            rssi=rssi,
            lsnr=lsnr,
            data=bytes(phy),
        )

    def push_data(self, *phys: bytes, stat: packets.GatewayStat | None = None, **radio) -> bytes:
        """PUSH_DATA with one rxpk per PHYPayload (keyword args go to `rx_packet`)."""
        rxpk = [self.rx_packet(phy, **radio) for phy in phys]
        self.tmst = (self.tmst + self.tmst_step) & 0xFFFF_FFFF
        return gwmp.push_data(self.version, self._token(), self.eui, rxpk, stat)

    def stat(self, **fields) -> bytes:
        defaults = {"time": "2024-01-01 00:00:00 GMT", "rxnb": 0, "rxok": 0, "rxfw": 0,
                    "ackr": 100.0, "dwnb": 0, "txnb": 0}
        return gwmp.push_data(
            self.version, self._token(), self.eui, stat=packets.GatewayStat(**{**defaults, **fields})
        )

    def pull_data(self) -> bytes:
        return gwmp.pull_data(self.version, self._token(), self.eui)

    def tx_ack(self, token: int, error: str | None = "NONE") -> bytes:
        return gwmp.tx_ack(self.version, token, self.eui, error)

    @staticmethod
    def parse_reply(data: bytes) -> gwmp.PushAck | gwmp.PullAck | gwmp.PullResp:
        return gwmp.parse_server_datagram(data)

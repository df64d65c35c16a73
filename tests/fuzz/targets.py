"""The network-facing parsers as fuzz targets: bytes in, a typed value or a ProtocolError out.

Each target calls the codec the way the daemon does and checks what must hold for any input
(no exception but the codec's own, round trips where the codec promises them). The same targets
serve hypothesis (test_fuzz_targets.py) and atheris (atheris_fuzz.py).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qsl

from gatewayd.connectors.devices import json_codec as device_json, xml_codec as device_xml, dialect
from gatewayd.connectors.lorawan import gwmp, frames as lorawan
from gatewayd.connectors.monitor import resiot
from gatewayd.connectors.monitor import tx_request
from gatewayd.connectors.terminals import codec as terminal
from gatewayd.connectors.terminals import command_codec as tc
from gatewayd.connectors.terminals import fields as tf
from gatewayd.errors import ProtocolError

MAX_FRAME = 64 * 1024
KEY = bytes(range(16))


@dataclass
class Target:
    name: str
    run: Callable[[bytes], object]
    seeds: list[bytes] = field(default_factory=list)
    calls: int = 0

    def __call__(self, data: bytes) -> None:
        self.calls += 1
        try:
            self.run(data)
        except ProtocolError:
            pass


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def device_json_target(data: bytes) -> None:
    for frame in (data, _text(data)):
        try:
            msg = device_json.decode(frame, max_chars=MAX_FRAME)
        except ProtocolError:
            continue
        assert device_json.decode(device_json.encode(msg), max_chars=4 * MAX_FRAME) == msg


def device_xml_target(data: bytes) -> None:
    for frame in (data, _text(data)):
        try:
            msg = device_xml.decode(frame, max_chars=MAX_FRAME)
        except ProtocolError:
            continue
        try:
            encoded = device_xml.encode(msg)
        except ProtocolError:
            continue  # some JSON-able payloads have no XML form; the encoder says so
        assert device_xml.decode(encoded, max_chars=4 * MAX_FRAME) == msg


def dialect_target(data: bytes) -> None:
    for frame in (data, _text(data)):
        assert dialect.choose_dialect(None, frame) in ("json", "xml", "terminal")
    assert dialect.choose_dialect(_text(data).split(","), data) in ("json", "xml", "terminal")


def terminal_target(data: bytes) -> None:
    obj = tf.loads_lenient(data, MAX_FRAME)
    if tc.is_reply(obj):
        reply = tc.decode_reply(obj)
        tc.punches_in_reply(reply)
        tc.page_done(reply, 1, 10)
        return
    request = terminal.decode_request(obj)
    # a request that decodes has a printable serial number the reply can carry
    assert request.sn and request.sn == request.sn.strip()


def gwmp_target(data: bytes) -> None:
    try:
        packet = gwmp.parse_datagram(data)
    except ProtocolError:
        packet = None
    if isinstance(packet, gwmp.PushData):
        for rx in packet.rxpk:
            lorawan_phy_target(rx.data)
    try:
        gwmp.parse_server_datagram(data)
    except ProtocolError:
        pass


def lorawan_phy_target(data: bytes) -> None:
    try:
        frame = lorawan.parse_phy(data)
    except ProtocolError:
        frame = None
    if isinstance(frame, lorawan.DataFrame):
        fcnt32 = lorawan.reconstruct_fcnt(frame.f_cnt16, 0xFFFF0)
        lorawan.verify_data_mic(frame, KEY, fcnt32)
        lorawan.decrypt_payload(frame, KEY, KEY, fcnt32)
    elif isinstance(frame, lorawan.JoinRequest):
        lorawan.verify_join_request(frame, KEY)
    try:
        lorawan.decode_join_accept(KEY, data)
    except ProtocolError:
        pass


def tx_target(data: bytes) -> None:
    for frame in (data, _text(data)):
        try:
            tx = tx_request.parse_tx(frame)
        except tx_request.TxError:
            continue
        assert 0 <= tx.port <= 255 and len(tx.payload) <= tx_request.MAX_TX_PAYLOAD_BYTES
        json.loads(tx_request.tx_reply(True, "", tx.reference))


def monitor_query_target(data: bytes) -> None:
    query = dict(parse_qsl(_text(data), keep_blank_values=True))
    for known in (resiot.COMM_TYPES, None):
        try:
            resiot.parse_filter(query, known)
        except ValueError:
            pass


def _json(obj) -> bytes:
    return json.dumps(obj).encode()


def _push_data(body: dict) -> bytes:
    return bytes([2, 0x12, 0x34, 0]) + bytes.fromhex("aa555a0000000001") + _json(body)


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("device_json", device_json_target, [
        _json({"type": "register", "device_id": "d1", "token": "tok_x"}),
        _json({"type": "telemetry", "id": "7", "payload": {"t": 22.5, "h": [1, 2, {"x": None}]}}),
        _json({"type": "event", "event": "door", "payload": {}}),
        _json({"type": "command_result", "id": "c-1", "ok": False, "error": "nope"}),
        _json({"type": "ping"})]),
    Target("device_xml", device_xml_target, [
        b'<register device_id="d1" token="tok_x"/>',
        b'<telemetry id="7"><temperature>22.5</temperature><ok>true</ok></telemetry>',
        b'<event name="door" id="8"><zone>2</zone></event>',
        b'<attendance id="9"><record enrollid="12" time="2026-06-12 09:15:30" mode="8" inout="0" event="0"/>'
        b'</attendance>',
        b'<command_result id="c-1" ok="true"/>', b"<ping/>"]),
    Target("dialect", dialect_target, [b'{"cmd":"reg","sn":"X"}', b" <ping/>", b'{"type":"ping"}']),
    Target("terminal", terminal_target, [
        _json({"cmd": "reg", "sn": "AYSK01", "cpusn": "C", "devinfo": {"modelname": "m", "usersize": 3000}}),
        _json({"cmd": "sendlog", "sn": "AYSK01", "count": 1, "logindex": 0, "record": [
            {"enrollid": 1, "time": "2026-06-12 09:00:00", "mode": 1, "inout": 0, "event": 0, "temp": 3650}]}),
        b'{"cmd" : "checklive", "sn " : " AYSK01 ", "time": "2026-06-12 09:00:00",}',
        _json({"ret": "getuserlist", "result": True, "count": 2, "from": 0, "to": 1,
               "record": [{"enrollid": 1, "backupnum": 0}]})]),
    Target("gwmp", gwmp_target, [
        _push_data({"rxpk": [{"tmst": 1, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125",
                              "codr": "4/5", "rssi": -50, "lsnr": 5.5, "size": 3,
                              "data": base64.b64encode(b"\x40\x01\x02").decode()}],
                    "stat": {"time": "2014-01-12 08:59:28 GMT", "rxnb": 1}}),
        bytes([2, 0, 1, 2]) + bytes.fromhex("aa555a0000000001"),
        bytes([2, 0, 1, 5]) + bytes.fromhex("aa555a0000000001") + _json({"txpk_ack": {"error": "NONE"}}),
        bytes([2, 0, 1, 3]) + _json({"txpk": {"imme": True, "freq": 869.525, "rfch": 0, "powe": 14,
                                             "modu": "LORA", "datr": "SF12BW125", "codr": "4/5", "ipol": True,
                                             "size": 1, "data": "AA=="}})]),
    Target("lorawan_phy", lorawan_phy_target, [
        lorawan.build_join_request(KEY, "70b3d57ed0000000", "70b3d57ed0000001", 0x1234),
        bytes.fromhex("40da1b0126800000016d7ee54d8b8e") ,
        bytes([0x80]) + bytes(11)]),
    Target("tx_command", tx_target, [
        _json({"function": "TX", "Payload": "HI!", "AppEui": "ABCDEF1234567890", "DevEui": "0987654321ABCDEF",
               "Connector": "", "Port": 50, "Reference": "abcdefgh", "Raw": True, "Confirm": True}),
        _json({"function": "TX", "Payload": "0102", "DevEUI": "device-1", "Port": "3", "WSCommand": "go"})]),
    Target("monitor_query", monitor_query_target, [b"types=comm_rx,comm_tx&dev=0004a30b001c0530&connector=lorawan",
                                                   b"since=12&dev=&types="]),
]}

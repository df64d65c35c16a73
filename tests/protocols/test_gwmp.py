import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.connectors.lorawan import gwmp
from gatewayd.errors import ProtocolError
from gatewayd.connectors.lorawan.packets import GatewayStat, RxPacket, TxPacket
from gatewayd.connectors.lorawan.gwmp import (PullData, PullResp, PushData, TxAck, parse_datagram, parse_header,
                                              parse_server_datagram)

EUI = "aa555a0000000001"
EUI_BYTES = bytes.fromhex(EUI)
PHY = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")
PHY_B64 = "QPF9vkkAAgABlUN4disR/w0="

RXPK = {
    "time": "2024-05-01T10:00:00.000001Z",
    "tmst": 3_000_000_123,
    "chan": 2,
    "rfch": 1,
    "freq": 868.5,
    "stat": 1,
    "modu": "LORA",
    "datr": "SF9BW125",
    "codr": "4/5",
    "rssi": -71,
    "lsnr": 7.8,
    "size": 17,
    "data": PHY_B64,
}
STAT = {
    "time": "2024-05-01 10:00:00 GMT",
    "lati": 52.1,
    "long": 4.25,
    "alti": 12,
    "rxnb": 5,
    "rxok": 4,
    "rxfw": 4,
    "ackr": 100.0,
    "dwnb": 1,
    "txnb": 1,
}


def push(doc, version=2, token=b"\x12\x34") -> bytes:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return bytes([version]) + token + b"\x00" + EUI_BYTES + body


def entry(**changes) -> dict:
    e = dict(RXPK, **changes)
    return {k: v for k, v in e.items() if v is not ...}


def error(data: bytes, parse=parse_datagram) -> ProtocolError:
    with pytest.raises(ProtocolError) as e:
        parse(data)
    return e.value


# --------------------------------------------------------------------------------------------
# Literal datagrams


def test_literal_push_data():
    datagram = (
        b"\x02\x12\x34\x00\xaa\x55\x5a\x00\x00\x00\x00\x01"
        b'{"rxpk":[{"time":"2024-05-01T10:00:00.000001Z","tmst":3000000123,"chan":2,"rfch":1,'
        b'"freq":868.5,"stat":1,"modu":"LORA","datr":"SF9BW125","codr":"4/5","rssi":-71,'
        b'"lsnr":7.8,"size":17,"data":"QPF9vkkAAgABlUN4disR/w0="}]}'
    )
    p = parse_datagram(datagram)
    assert isinstance(p, PushData)
    assert (p.version, p.token, p.gateway_eui, p.stat, p.bad_rxpk) == (2, 0x1234, EUI, None, 0)
    (rx,) = p.rxpk
    assert rx == RxPacket(
        time="2024-05-01T10:00:00.000001Z", tmst=3_000_000_123, chan=2, rfch=1, freq=868.5,
        stat=1, modu="LORA", datr="SF9BW125", codr="4/5", rssi=-71, lsnr=7.8, size=17, data=PHY,
    )
    assert rx.crc_ok


def test_literal_push_data_with_stat_only():
    p = parse_datagram(b"\x01\x00\x07\x00" + EUI_BYTES + json.dumps({"stat": STAT}).encode())
    assert p.version == 1 and p.token == 7 and p.rxpk == []
    assert p.stat == GatewayStat(**STAT)


def test_literal_pull_data_and_tx_ack():
    assert parse_datagram(b"\x02\xab\xcd\x02" + EUI_BYTES) == PullData(2, 0xABCD, EUI)
    assert parse_datagram(b"\x02\xab\xcd\x02" + EUI_BYTES + b"junk") == PullData(2, 0xABCD, EUI)
    ack = parse_datagram(b"\x02\x00\x01\x05" + EUI_BYTES + b'{"txpk_ack":{"error":"TX_FREQ"}}\x00')
    assert ack == TxAck(2, 1, EUI, "TX_FREQ")


@pytest.mark.parametrize(
    "tail, error_, warn",
    [
        (b"", "NONE", None),
        (b"\x00", "NONE", None),
        (b"{}", "NONE", None),
        (b'{"txpk_ack":{}}', "NONE", None),
        (b'{"txpk_ack":{"error":""}}', "NONE", None),
        (b'{"txpk_ack":{"error":"NONE"}}', "NONE", None),
        (b'{"txpk_ack":{"error":"TOO_LATE"}}\x00', "TOO_LATE", None),
        (b'{"txpk_ack":{"warn":"TX_POWER","value":20}}', "NONE", "TX_POWER"),
    ],
)
@pytest.mark.parametrize("version", [1, 2])
def test_tx_ack_variants(tail, error_, warn, version):
    ack = parse_datagram(bytes([version]) + b"\x00\x09\x05" + EUI_BYTES + tail)
    assert ack == TxAck(version, 9, EUI, error_, warn)


def test_fsk_and_unpadded_and_rsig_entries():
    fsk = entry(modu="FSK", datr=50000, codr=..., lsnr=..., data=PHY_B64.rstrip("="))
    multi = entry(rssi=..., lsnr=..., rsig=[{"ant": 0, "chan": 2, "rssic": -80, "lsnr": 3.5}])
    crc_bad = entry(stat=-1)
    minimal = {k: RXPK[k] for k in ("tmst", "freq", "stat", "modu", "datr", "rssi", "data")}
    p = parse_datagram(push({"rxpk": [fsk, multi, crc_bad, minimal]}))
    assert p.bad_rxpk == 0
    a, b, c, d = p.rxpk
    assert (a.modu, a.datr, a.codr, a.lsnr, a.data) == ("FSK", 50000, None, None, PHY)
    assert (b.rssi, b.lsnr) == (-80, 3.5)
    assert c.stat == -1 and not c.crc_ok
    assert (d.time, d.chan, d.rfch, d.codr, d.lsnr, d.size) == (None, None, None, None, None, 17)


# --------------------------------------------------------------------------------------------
# Encoders and round trips


def test_acks_are_headers():
    assert gwmp.push_ack(2, 0x1234) == b"\x02\x12\x34\x01"
    assert gwmp.pull_ack(1, 0xFFFF) == b"\x01\xff\xff\x04"
    assert parse_server_datagram(b"\x02\x12\x34\x01") == gwmp.PushAck(2, 0x1234)
    assert parse_server_datagram(b"\x01\xff\xff\x04") == gwmp.PullAck(1, 0xFFFF)


def test_pull_resp_json():
    tx = TxPacket(tmst=1_000_000, freq=869.525, rfch=0, powe=14, modu="LORA", datr="SF12BW125",
                  codr="4/5", ipol=True, data=PHY)
    datagram = gwmp.pull_resp(2, 0x0102, tx)
    assert datagram[:4] == b"\x02\x01\x02\x03"
    assert json.loads(datagram[4:]) == {
        "txpk": {"imme": False, "tmst": 1_000_000, "freq": 869.525, "rfch": 0, "powe": 14,
                 "modu": "LORA", "datr": "SF12BW125", "codr": "4/5", "ipol": True, "size": 17,
                 "data": PHY_B64}
    }
    assert tx.size == 17
    assert parse_server_datagram(datagram) == PullResp(2, 0x0102, tx)


def test_pull_resp_immediate_has_no_tmst():
    tx = TxPacket(imme=True, freq=868.1, datr="SF7BW125", data=b"\x01")
    doc = json.loads(gwmp.pull_resp(1, 0, tx)[4:])["txpk"]
    assert doc["imme"] is True and "tmst" not in doc
    assert parse_server_datagram(gwmp.pull_resp(1, 0, tx)).txpk == tx


@pytest.mark.parametrize("version", [1, 2])
def test_gateway_side_round_trips(version):
    rx = [RxPacket(**{**RXPK, "data": PHY}), RxPacket(tmst=5, freq=868.1, modu="LORA",
                                                       datr="SF7BW125", rssi=-120, data=b"")]
    stat = GatewayStat(**STAT)
    p = parse_datagram(gwmp.push_data(version, 77, EUI.upper(), rx, stat))
    assert p == PushData(version, 77, EUI, rx, stat)
    assert parse_datagram(gwmp.push_data(version, 1, EUI)) == PushData(version, 1, EUI, [], None)
    assert parse_datagram(gwmp.pull_data(version, 2, EUI)) == PullData(version, 2, EUI)
    for err in ["NONE", "COLLISION_PACKET", "GPS_UNLOCKED"]:
        assert parse_datagram(gwmp.tx_ack(version, 3, EUI, err)).error == err
    assert parse_datagram(gwmp.tx_ack(version, 3, EUI, None, nul=True)) == TxAck(version, 3, EUI)


def test_parse_header():
    assert parse_header(b"\x02\x00\x05\x00") == (2, 5, 0)
    assert parse_header(b"\x01\x00\x05\x09") == gwmp.Header(1, 5, 9)


@pytest.mark.parametrize(
    "call, code",
    [
        (lambda: gwmp.push_ack(3, 0), "bad_version"),
        (lambda: gwmp.pull_ack(2, 0x10000), "bad_token"),
        (lambda: gwmp.pull_ack(2, -1), "bad_token"),
        (lambda: gwmp.pull_data(2, 0, "aa55"), "bad_eui"),
        (lambda: gwmp.pull_data(2, 0, "zz" * 8), "bad_eui"),
        (lambda: gwmp.pull_resp(2, 0, TxPacket(freq=868.1, datr="SF7BW125", data=b"")), "invalid"),
    ],
)
def test_encoder_errors(call, code):
    with pytest.raises(ProtocolError) as e:
        call()
    assert e.value.code == code


# --------------------------------------------------------------------------------------------
# Malformed datagrams


@pytest.mark.parametrize(
    "data, code, words",
    [
        (b"", "short", "header"),
        (b"\x02\x00\x00", "short", "header"),
        (b"\x02\x00\x00\x00" + bytes(7), "short", "PUSH_DATA is 11 bytes"),
        (b"\x02\x00\x00\x02" + bytes(3), "short", "PULL_DATA"),
        (b"\x02\x00\x00\x05", "short", "TX_ACK"),
        (b"\x00\x00\x00\x02" + EUI_BYTES, "bad_version", "version 0"),
        (b"\x03\x00\x00\x02" + EUI_BYTES, "bad_version", "version 3"),
        (b"\x02\x00\x00\x06" + EUI_BYTES, "bad_id", "unknown packet identifier 0x06"),
        (b"\x02\x00\x00\xff" + EUI_BYTES, "bad_id", "0xff"),
        (b"\x02\x00\x00\x01", "bad_id", "PUSH_ACK is sent by a server"),
        (b"\x02\x00\x00\x03" + b"{}", "bad_id", "PULL_RESP"),
        (b"\x02\x00\x00\x04", "bad_id", "PULL_ACK"),
        (push(b""), "bad_json", "no JSON"),
        (push(b"\x00\x00"), "bad_json", "no JSON"),
        (push(b'{"rxpk":['), "bad_json", "not valid JSON"),
        (push(b"\xff\xfe{}"), "bad_json", "UTF-8"),
        (push(b'{"rxpk":[{"freq":NaN}]}'), "bad_json", "NaN"),
        (push(b"[" * 100_00 + b"]" * 100_00), "bad_json", "JSON"),
        (push(b"[]"), "invalid", "must be an object, got array"),
        (push(b'"rxpk"'), "invalid", "got string"),
        (push(b"42"), "invalid", "got integer"),
        (push(b"null"), "invalid", "got null"),
        (push({"rxpk": {}}), "invalid", "rxpk must be an array"),
        (push(b"{}" + bytes(1) + b" " * (gwmp.MAX_DATAGRAM - 14)), "bad_length", "65507"),
        (b"\x02\x00\x00\x05" + EUI_BYTES + b"[1]", "invalid", "TX_ACK JSON must be an object"),
        (b"\x02\x00\x00\x05" + EUI_BYTES + b'{"txpk_ack":1}', "invalid", "txpk_ack must be"),
        (b"\x02\x00\x00\x05" + EUI_BYTES + b'{"txpk_ack":{"error":5}}', "invalid", "error"),
        (b"\x02\x00\x00\x05" + EUI_BYTES + b"{bad", "bad_json", "TX_ACK"),
    ],
)
def test_malformed_datagrams(data, code, words):
    e = error(data)
    assert e.code == code
    assert words in e.message


def test_datagram_at_the_size_limit_parses():
    data = push(b"{}" + b" " * (gwmp.MAX_DATAGRAM - 14))
    assert len(data) == gwmp.MAX_DATAGRAM and parse_datagram(data).rxpk == []


@pytest.mark.parametrize(
    "bad, code_words",
    [
        ("not an object", "rxpk[0] must be an object, got string"),
        (entry(data="QPF9vkkAAgAB!UN4"), "rxpk[0].data is not valid base64"),
        (entry(data="QPF9v"), "rxpk[0].data is not valid base64"),
        (entry(tmst=...), "rxpk[0] lacks required field 'tmst'"),
        (entry(tmst=True), "rxpk[0].tmst must be an integer, got boolean"),
        (entry(tmst=1.5), "rxpk[0].tmst must be an integer, got number"),
        (entry(tmst=1 << 32), "not a 32-bit counter"),
        (entry(freq="868.1"), "rxpk[0].freq must be a number, got string"),
        (entry(freq=...), "lacks required field 'freq'"),
        (entry(datr=125), "rxpk[0].datr must be a string, got integer"),
        (entry(modu="FSK"), "rxpk[0].datr must be an integer, got string"),
        (entry(modu="CSS"), "modu must be"),
        (entry(modu=...), "lacks required field 'modu'"),
        (entry(stat=2), "stat must be 1, 0 or -1"),
        (entry(stat=...), "lacks required field 'stat'"),
        (entry(size=3), "size is 3 but data decodes to 17 bytes"),
        (entry(rssi=...), "lacks required field 'rssi'"),
        (entry(rssi=..., rsig=[{"ant": 0}]), "lacks required field 'rssi'"),
        (entry(rssi=..., rsig=[1]), "lacks required field 'rssi'"),
        (entry(rssi="-50"), "rxpk[0].rssi must be a number"),
        (entry(lsnr=[]), "rxpk[0].lsnr must be a number, got array"),
        (entry(chan=None), "rxpk[0].chan must be an integer, got null"),
        (entry(codr=5), "rxpk[0].codr must be a string"),
        (entry(time=0), "rxpk[0].time must be a string"),
    ],
)
def test_bad_rxpk_entry_is_skipped_not_fatal(bad, code_words):
    p = parse_datagram(push({"rxpk": [bad, RXPK], "stat": STAT}))
    assert p.bad_rxpk == 1 and len(p.rxpk) == 1 and p.rxpk[0].data == PHY
    assert p.stat is not None
    assert code_words in p.errors[0]


def test_several_bad_entries_are_counted():
    p = parse_datagram(push({"rxpk": [1, entry(data="@"), RXPK, {}]}))
    assert p.bad_rxpk == 3 and len(p.errors) == 3 and len(p.rxpk) == 1


@pytest.mark.parametrize(
    "stat, words",
    [
        ([], "stat must be an object, got array"),
        ({"rxnb": "5"}, "stat.rxnb must be an integer, got string"),
        ({"lati": True}, "stat.lati must be a number, got boolean"),
        ({"time": 1}, "stat.time must be a string"),
    ],
)
def test_bad_stat_is_dropped_not_fatal(stat, words):
    p = parse_datagram(push({"rxpk": [RXPK], "stat": stat}))
    assert p.stat is None and p.bad_rxpk == 0 and len(p.rxpk) == 1
    assert words in p.errors[0]


@pytest.mark.parametrize(
    "data, code",
    [
        (b"\x02\x00\x00\x03", "bad_json"),
        (b"\x02\x00\x00\x03{}", "invalid"),
        (b'\x02\x00\x00\x03{"txpk":[]}', "invalid"),
        (b'\x02\x00\x00\x03{"txpk":{"freq":868.1,"datr":"SF7BW125","data":"AA=="}}', "invalid"),
        (b'\x02\x00\x00\x03{"txpk":{"imme":true,"freq":868.1,"datr":"SF7BW125","data":"A"}}',
         "bad_base64"),
        (b'\x02\x00\x00\x03{"txpk":{"imme":true,"freq":868.1,"datr":"SF7BW125","data":"AA==",'
         b'"size":2}}', "bad_length"),
        (b"\x02\x00\x00\x00" + EUI_BYTES + b"{}", "bad_id"),
        (b"\x02\x00", "short"),
    ],
)
def test_malformed_server_datagrams(data, code):
    assert error(data, parse_server_datagram).code == code


# --------------------------------------------------------------------------------------------
# Properties


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_protocol_error(data):
    try:
        parse_datagram(data)
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0, 2, 5]), st.binary(max_size=120))
def test_valid_headers_with_arbitrary_bodies(ident, body):
    try:
        parse_datagram(bytes([2, 0, 1, ident]) + EUI_BYTES + body)
    except ProtocolError:
        pass


VALID = [
    push({"rxpk": [RXPK], "stat": STAT}),
    gwmp.pull_data(2, 1, EUI),
    gwmp.tx_ack(2, 1, EUI, "TOO_LATE", nul=True),
]


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 10_000),
)
def test_mutated_valid_datagrams_raise_only_protocol_error(base, flips, cut):
    data = bytearray(base)
    for pos, value in flips:
        data[pos % len(data)] = value
    try:
        parse_datagram(bytes(data[: max(cut, len(data) // 2)]))
    except ProtocolError:
        pass


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
RXPK_KEYS = st.sampled_from(list(RXPK) + ["rsig", "other"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(RXPK_KEYS, JSON_VALUES, max_size=13), max_size=3), JSON_VALUES)
def test_arbitrary_json_structures_raise_only_protocol_error(entries, stat):
    data = push({"rxpk": [dict(RXPK, **e) for e in entries], "stat": stat})
    p = parse_datagram(data)
    assert p.bad_rxpk + len(p.rxpk) == len(entries)

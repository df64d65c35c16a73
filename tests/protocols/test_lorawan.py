import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.connectors.lorawan import gwmp, regions
from gatewayd.connectors.lorawan import packets
from gatewayd.errors import ProtocolError
from gatewayd.connectors.lorawan.frames import (DataFrame, JoinRequest, MType, build_data_frame, build_join_accept,
                                                build_join_request, decode_join_accept, decrypt_payload,
                                                dev_addr_hex, eui_to_hex, hex_to_eui, parse_dev_addr, parse_key,
                                                parse_phy, reconstruct_fcnt, verify_data_mic, verify_join_request)
from gatewayd.connectors.lorawan.crypto import (aes_cmac, crypt_frm_payload, data_mic, derive_session_keys,
                                                join_request_mic)
from tests.lorasim import SimDevice, SimGateway

VECTOR_FILE = Path(__file__).parents[1] / "vectors" / "lorawan.json"
VECTORS = json.loads(VECTOR_FILE.read_text())["vectors"]


def _kind(v: dict) -> str:
    if "message" in v:
        return "cmac"
    if "app_nonce" in v:
        return "session_keys"
    if "phy_payload_plaintext" in v:
        return "join_accept"
    if v["expect"].get("mtype") == "join_request":
        return "join_request"
    return "data_frame"


def _vectors(kind: str) -> list:
    return [pytest.param(v, id=v["name"]) for v in VECTORS if _kind(v) == kind]


NWK = parse_key("44024241ed4ce9a68c6a8bc055233fd3")
APP = parse_key("ec925802ae430ca77fd3dd73cb2cc588")
APP_KEY = parse_key("98929b92c49edba9676d646d3b612456")
DEV_ADDR = 0x49BE7DF1


# --------------------------------------------------------------------------------------------
# Published vectors


def test_every_vector_has_a_kind():
    kinds = [_kind(v) for v in VECTORS]
    assert set(kinds) == {"cmac", "session_keys", "join_accept", "join_request", "data_frame"}


@pytest.mark.parametrize("v", _vectors("data_frame"))
def test_data_frame_vectors(v):
    expect = v["expect"]
    frame = parse_phy(bytes.fromhex(v["phy_payload"]))
    assert isinstance(frame, DataFrame)
    assert frame.mtype.label == expect["mtype"]
    assert dev_addr_hex(frame.dev_addr) == expect["dev_addr"]
    assert frame.f_cnt16 == expect["f_cnt"]
    assert frame.mic.hex() == expect["mic"]
    assert frame.ack == expect.get("ack", False)
    if "f_port" in expect:
        assert frame.f_port == expect["f_port"]
    nwk = parse_key(v["nwk_s_key"])
    fcnt32 = reconstruct_fcnt(frame.f_cnt16, 0)
    assert fcnt32 == expect["f_cnt"]
    assert verify_data_mic(frame, nwk, fcnt32)
    mic = data_mic(nwk, frame.raw[:-4], frame.dev_addr, fcnt32, frame.uplink)
    assert mic.hex() == expect["mic"]
    if "frm_payload_plain" in expect:
        plain = decrypt_payload(frame, nwk, parse_key(v["app_s_key"]), fcnt32)
        assert plain.hex() == expect["frm_payload_plain"]
        rebuilt = build_data_frame(
            frame.mtype, frame.dev_addr, fcnt32, nwk, parse_key(v["app_s_key"]),
            f_port=frame.f_port, payload=plain,
        )
        assert rebuilt == frame.raw


@pytest.mark.parametrize("v", _vectors("join_request"))
def test_join_request_vectors(v):
    raw = bytes.fromhex(v["phy_payload"])
    jr = parse_phy(raw)
    assert isinstance(jr, JoinRequest)
    assert jr.mtype.label == v["expect"]["mtype"]
    assert jr.mic.hex() == v["expect"]["mic"]
    key = parse_key(v["app_key"])
    assert join_request_mic(key, raw[:-4]).hex() == v["expect"]["mic"]
    assert verify_join_request(jr, key)
    assert build_join_request(key, jr.app_eui, jr.dev_eui, jr.dev_nonce) == raw


@pytest.mark.parametrize("v", _vectors("join_accept"))
def test_join_accept_vectors(v):
    plain = bytes.fromhex(v["phy_payload_plaintext"])
    key = parse_key(v["app_key"])
    assert MType(plain[0] >> 5).label == v["expect"]["mtype"]
    assert aes_cmac(key, plain[:-4])[:4].hex() == v["expect"]["mic"]
    # Rebuild the same join-accept from its fields: MIC over the plaintext, then encrypted.
    fields = {
        "app_nonce": int.from_bytes(plain[1:4], "little"),
        "net_id": int.from_bytes(plain[4:7], "little"),
        "dev_addr": int.from_bytes(plain[7:11], "little"),
        "dl_settings": plain[11],
        "rx_delay": plain[12],
    }
    on_air = build_join_accept(key, **fields, cflist=plain[13:-4] or None)
    assert on_air[0] == plain[0] and on_air != plain
    decoded = decode_join_accept(key, on_air)
    assert decoded["mic"].hex() == v["expect"]["mic"]
    assert {k: decoded[k] for k in fields} == fields


@pytest.mark.parametrize("v", _vectors("session_keys"))
def test_session_key_vectors(v):
    nwk, app = derive_session_keys(
        parse_key(v["app_key"]),
        int(v["app_nonce"], 16),
        int(v["net_id"], 16),
        int(v["dev_nonce"], 16),
    )
    assert nwk.hex() == v["expect"]["nwk_s_key"]
    assert app.hex() == v["expect"]["app_s_key"]


@pytest.mark.parametrize("v", _vectors("cmac"))
def test_cmac_vectors(v):
    mac = aes_cmac(bytes.fromhex(v["key"]), bytes.fromhex(v["message"]))
    assert mac.hex() == v["expect"]["cmac"]


# --------------------------------------------------------------------------------------------
# Parsing details


def test_join_request_fields_are_printed_big_endian():
    jr = parse_phy(bytes.fromhex("0039363463336913AA05693574323831330489C65B1304"))
    assert jr.app_eui == "aa13693363343639"
    assert jr.dev_eui == "3331383274356905"
    assert jr.dev_nonce == 0x8904
    assert jr.uplink


def test_fctrl_bits_and_fopts():
    phy = build_data_frame(
        MType.CONFIRMED_DATA_UP, DEV_ADDR, 0x12345, NWK, APP, f_port=10, payload=b"hi",
        adr=True, adr_ack_req=True, ack=True, f_pending=True, f_opts=b"\x02",
    )
    f = parse_phy(phy)
    assert (f.adr, f.adr_ack_req, f.ack, f.f_pending) == (True, True, True, True)
    assert f.f_opts == b"\x02" and f.f_cnt16 == 0x2345 and f.f_port == 10
    assert f.confirmed and f.uplink and f.dev_addr_hex == "49be7df1"
    assert phy[5] == 0xF1
    assert verify_data_mic(f, NWK, 0x12345)
    assert not verify_data_mic(f, NWK, 0x2345)  # wrong high bits: MIC fails
    assert decrypt_payload(f, NWK, APP, 0x12345) == b"hi"


def test_frame_without_port_has_no_payload():
    f = parse_phy(build_data_frame(MType.UNCONFIRMED_DATA_DOWN, DEV_ADDR, 3, NWK, APP, ack=True))
    assert f.f_port is None and f.frm_payload == b"" and not f.uplink
    assert decrypt_payload(f, NWK, APP, 3) == b""


def test_port_zero_uses_nwk_s_key():
    phy = build_data_frame(
        MType.UNCONFIRMED_DATA_DOWN, DEV_ADDR, 7, NWK, APP, f_port=0, payload=b"\x02"
    )
    f = parse_phy(phy)
    assert f.frm_payload == crypt_frm_payload(NWK, DEV_ADDR, 7, False, b"\x02")
    assert decrypt_payload(f, NWK, APP, 7) == b"\x02"
    assert decrypt_payload(f, APP, NWK, 7) != b"\x02"


def test_mtype_labels():
    assert MType.from_label("unconfirmed_data_up") is MType.UNCONFIRMED_DATA_UP
    assert MType.CONFIRMED_DATA_DOWN.label == "confirmed_data_down"
    assert MType.PROPRIETARY == 7
    with pytest.raises(ProtocolError) as e:
        MType.from_label("nope")
    assert e.value.code == "bad_mtype"


def test_crypt_is_its_own_inverse_across_blocks():
    data = bytes(range(40))
    enc = crypt_frm_payload(APP, DEV_ADDR, 99, True, data)
    assert enc != data and crypt_frm_payload(APP, DEV_ADDR, 99, True, enc) == data
    assert crypt_frm_payload(APP, DEV_ADDR, 99, False, enc) != data  # direction matters
    assert crypt_frm_payload(APP, DEV_ADDR, 99, True, b"") == b""


# --------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("mtype", [m for m in MType if m.is_data])
@pytest.mark.parametrize("size", [0, 1, 16, 17, 51, 222, 242])
def test_data_frame_round_trip(mtype, size):
    payload = bytes((i * 7) & 0xFF for i in range(size))
    fcnt32 = 0x0001_0005
    phy = build_data_frame(mtype, DEV_ADDR, fcnt32, NWK, APP, f_port=1, payload=payload)
    f = parse_phy(phy)
    assert f.mtype is mtype and f.uplink == mtype.is_uplink
    full = reconstruct_fcnt(f.f_cnt16, 0x0001_0000)
    assert full == fcnt32
    assert verify_data_mic(f, NWK, full)
    assert decrypt_payload(f, NWK, APP, full) == payload


@settings(max_examples=150, deadline=None)
@given(
    mtype=st.sampled_from([m for m in MType if m.is_data]),
    dev_addr=st.integers(0, 0xFFFF_FFFF),
    fcnt32=st.integers(0, 0xFFFF_FFFF),
    f_opts=st.binary(max_size=15),
    payload=st.binary(max_size=200),
    port=st.integers(1, 255),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
def test_data_frame_round_trip_property(mtype, dev_addr, fcnt32, f_opts, payload, port, flags):
    adr, ack, f_pending, adr_ack_req = flags
    phy = build_data_frame(
        mtype, dev_addr, fcnt32, NWK, APP, f_port=port, payload=payload, adr=adr, ack=ack,
        f_pending=f_pending, adr_ack_req=adr_ack_req, f_opts=f_opts,
    )
    f = parse_phy(phy)
    assert (f.dev_addr, f.f_cnt16, f.f_opts, f.f_port) == (dev_addr, fcnt32 & 0xFFFF, f_opts, port)
    assert (f.adr, f.ack, f.f_pending, f.adr_ack_req) == flags
    assert verify_data_mic(f, NWK, fcnt32)
    assert decrypt_payload(f, NWK, APP, fcnt32) == payload


@pytest.mark.parametrize("cflist", [None, bytes(range(16))])
@pytest.mark.parametrize("rx_delay", [0, 1, 5])
def test_join_accept_round_trip(cflist, rx_delay):
    phy = build_join_accept(APP_KEY, 0xABCDEF, 0x000013, 0x26011234, 0x32, rx_delay, cflist)
    assert len(phy) == (33 if cflist else 17)
    got = decode_join_accept(APP_KEY, phy)
    assert (got["app_nonce"], got["net_id"], got["dev_addr"]) == (0xABCDEF, 0x13, 0x26011234)
    assert (got["dl_settings"], got["rx1_dr_offset"], got["rx2_dr"]) == (0x32, 3, 2)
    assert got["rx_delay"] == rx_delay and got["cflist"] == cflist


def test_join_accept_with_wrong_key_fails_mic():
    phy = build_join_accept(APP_KEY, 1, 2, 3)
    with pytest.raises(ProtocolError) as e:
        decode_join_accept(NWK, phy)
    assert e.value.code == "bad_mic"


def test_join_accept_is_refused_by_parse_phy():
    with pytest.raises(ProtocolError) as e:
        parse_phy(build_join_accept(APP_KEY, 1, 2, 3))
    assert e.value.code == "bad_mtype" and "join_accept" in e.value.message


# --------------------------------------------------------------------------------------------
# FCnt reconstruction


@pytest.mark.parametrize(
    "fcnt16, expected32, full",
    [
        (0, 0, 0),
        (5, 0, 5),
        (0xFFFF, 0, 0xFFFF),  # nothing before 0: a jump, not a retransmission
        (4, 5, 4),  # retransmission of the last frame
        (5, 5, 5),
        (9, 5, 9),
        (3, 5, 0x10003),  # went back by two: far ahead, refused by the gap policy / MIC
        (0xFFFF, 0xFFFF, 0xFFFF),
        (0x0000, 0xFFFF + 1, 0x10000),  # the wrap 0xFFFF -> 0x10000
        (0xFFFF, 0x10000, 0xFFFF),  # retransmission across the wrap
        (0x0001, 0x10000, 0x10001),
        (0x0002, 0xFFFE, 0x10002),  # counter jumped over the wrap
        (0xFFFE, 0x1FFFF, 0x1FFFE),
        (0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF),
        (0xFFFF, 1 << 32, 0xFFFF_FFFF),
    ],
)
def test_reconstruct_fcnt(fcnt16, expected32, full):
    assert reconstruct_fcnt(fcnt16, expected32) == full


@given(expected=st.integers(1, 0xFFFF_0000), delta=st.integers(-1, 0xFFFE))
def test_reconstruct_fcnt_property(expected, delta):
    actual = expected + delta
    assert reconstruct_fcnt(actual & 0xFFFF, expected) == actual


@pytest.mark.parametrize(
    "fcnt16, expected32, code",
    [
        (0x10000, 0, "bad_fcnt"),
        (-1, 0, "bad_fcnt"),
        (0, -1, "bad_fcnt"),
        (0, (1 << 32) + 1, "bad_fcnt"),
        (True, 0, "bad_fcnt"),
        (0, 0xFFFF_FFFF, "fcnt_exhausted"),
        (0, 1 << 32, "fcnt_exhausted"),
    ],
)
def test_reconstruct_fcnt_errors(fcnt16, expected32, code):
    with pytest.raises(ProtocolError) as e:
        reconstruct_fcnt(fcnt16, expected32)
    assert e.value.code == code


# --------------------------------------------------------------------------------------------
# Errors


UPLINK = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")


@pytest.mark.parametrize(
    "data, code, words",
    [
        (b"", "short", "empty"),
        (bytes(256), "bad_length", "255"),
        (b"\x41" + UPLINK[1:], "bad_version", "major"),
        (UPLINK[:11], "short", "at least 12"),
        (b"\x40" + bytes(4) + b"\x05" + bytes(2) + bytes(4 + 4), "short", "FOptsLen is 5"),
        (b"\x40" + bytes(4) + b"\x01" + bytes(2) + b"\x03\x00\xaa" + bytes(4), "bad_fopts", "FP"),
        (bytes(22), "short", "exactly 23"),
        (bytes(24), "bad_length", "exactly 23"),
        (b"\x20" + bytes(16), "bad_mtype", "join_accept"),
        (b"\xC0" + bytes(16), "bad_mtype", "rfu"),
        (b"\xE0" + bytes(16), "bad_mtype", "proprietary"),
    ],
)
def test_parse_phy_errors(data, code, words):
    with pytest.raises(ProtocolError) as e:
        parse_phy(data)
    assert e.value.code == code
    assert words in e.value.message


def test_fopts_exactly_filling_the_frame_is_fine():
    f = parse_phy(b"\x40" + bytes(4) + b"\x02" + bytes(2) + b"\x03\x04" + bytes(4))
    assert f.f_opts == b"\x03\x04" and f.f_port is None


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"mtype": MType.JOIN_REQUEST}, "bad_mtype"),
        ({"mtype": 9}, "bad_mtype"),
        ({"dev_addr": 1 << 32}, "bad_dev_addr"),
        ({"fcnt32": -1}, "bad_fcnt"),
        ({"payload": b"x"}, "bad_fport"),
        ({"f_port": 256, "payload": b"x"}, "bad_fport"),
        ({"f_opts": bytes(16)}, "bad_fopts"),
        ({"f_port": 0, "f_opts": b"\x02"}, "bad_fopts"),
        ({"f_port": 1, "payload": bytes(243)}, "bad_length"),
        ({"nwk_s_key": bytes(15)}, "bad_key"),
        ({"app_s_key": "00" * 16, "f_port": 1}, "bad_key"),
    ],
)
def test_build_data_frame_errors(kwargs, code):
    args = {"mtype": MType.UNCONFIRMED_DATA_UP, "dev_addr": DEV_ADDR, "fcnt32": 1,
            "nwk_s_key": NWK, "app_s_key": APP}
    with pytest.raises(ProtocolError) as e:
        build_data_frame(**{**args, **kwargs})
    assert e.value.code == code


def test_largest_frame_builds():
    phy = build_data_frame(
        MType.UNCONFIRMED_DATA_UP, DEV_ADDR, 1, NWK, APP, f_port=1, payload=bytes(242)
    )
    assert len(phy) == 255 and parse_phy(phy).frm_payload


@pytest.mark.parametrize(
    "call, code",
    [
        (lambda: build_join_accept(APP_KEY, 1 << 24, 0, 0), "bad_nonce"),
        (lambda: build_join_accept(APP_KEY, 0, 1 << 24, 0), "bad_net_id"),
        (lambda: build_join_accept(APP_KEY, 0, 0, 0, dl_settings=256), "bad_dl_settings"),
        (lambda: build_join_accept(APP_KEY, 0, 0, 0, rx_delay=-1), "bad_rx_delay"),
        (lambda: build_join_accept(APP_KEY, 0, 0, 0, cflist=bytes(15)), "bad_length"),
        (lambda: build_join_accept(bytes(32), 0, 0, 0), "bad_key"),
        (lambda: decode_join_accept(APP_KEY, b""), "short"),
        (lambda: decode_join_accept(APP_KEY, b"\x20" + bytes(15)), "bad_length"),
        (lambda: decode_join_accept(APP_KEY, b"\x40" + bytes(16)), "bad_mtype"),
        (lambda: derive_session_keys(APP_KEY, 0, 0, 1 << 16), "bad_nonce"),
        (lambda: build_join_request(APP_KEY, "00" * 8, "00" * 7, 0), "bad_eui"),
        (lambda: build_join_request(APP_KEY, "00" * 8, "00" * 8, 1 << 16), "bad_nonce"),
        (lambda: crypt_frm_payload(APP, 0, 0, True, bytes(256)), "bad_length"),
        (lambda: data_mic(NWK, bytes(252), 0, 0, True), "bad_length"),
        (lambda: aes_cmac(b"short", b""), "bad_key"),
    ],
)
def test_crypto_errors(call, code):
    with pytest.raises(ProtocolError) as e:
        call()
    assert e.value.code == code


def test_tampered_frames_fail_verification():
    f = parse_phy(UPLINK[:-1] + bytes([UPLINK[-1] ^ 1]))
    assert not verify_data_mic(f, NWK, 2)
    jr_raw = bytearray.fromhex("0039363463336913AA05693574323831330489C65B1304")
    jr_raw[17] ^= 1
    assert not verify_join_request(parse_phy(bytes(jr_raw)), APP_KEY)


# --------------------------------------------------------------------------------------------
# Printed forms


def test_hex_helpers():
    assert eui_to_hex(bytes.fromhex("0102030405060708")) == "0102030405060708"
    assert hex_to_eui("AA-BB-CC-DD-EE-FF-00-11") == bytes.fromhex("aabbccddeeff0011")
    assert eui_to_hex(hex_to_eui("AA:bb:CC:dd:EE:ff:00:11")) == "aabbccddeeff0011"
    assert dev_addr_hex(0x49BE7DF1) == "49be7df1"
    assert dev_addr_hex(1) == "00000001"
    assert parse_dev_addr("49BE7DF1") == 0x49BE7DF1
    assert parse_key(" 44024241ED4CE9A68C6A8BC055233FD3 ") == NWK


@pytest.mark.parametrize(
    "call, code, words",
    [
        (lambda: parse_key("00" * 15), "bad_key", "32 hex digits"),
        (lambda: parse_key("zz" * 16), "bad_key", "32 hex digits"),
        (lambda: parse_key(b"\x00" * 16), "bad_key", "hex string"),
        (lambda: parse_key("00 " * 16), "bad_key", "32 hex digits"),
        (lambda: hex_to_eui("0011"), "bad_eui", "16 hex digits"),
        (lambda: eui_to_hex(b"\x00"), "bad_eui", "8 bytes"),
        (lambda: dev_addr_hex(-1), "bad_dev_addr", "0..4294967295"),
        (lambda: parse_dev_addr("1234567"), "bad_dev_addr", "8 hex digits"),
    ],
)
def test_hex_helper_errors(call, code, words):
    with pytest.raises(ProtocolError) as e:
        call()
    assert e.value.code == code and words in e.value.message


# --------------------------------------------------------------------------------------------
# Properties


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_parse_phy_raises_only_protocol_error(data):
    try:
        frame = parse_phy(data)
    except ProtocolError:
        return
    assert frame.raw == data


@settings(max_examples=300, deadline=None)
@given(
    mtype=st.sampled_from([0x00, 0x40, 0x60, 0x80, 0xA0]),
    body=st.binary(min_size=7, max_size=250),
)
def test_parse_phy_on_plausible_headers(mtype, body):
    data = bytes([mtype]) + body
    try:
        frame = parse_phy(data)
    except ProtocolError:
        return
    assert len(frame.mic) == 4 and frame.raw == data


# --------------------------------------------------------------------------------------------
# Simulator


def test_sim_otaa_join_uplink_downlink():
    dev = SimDevice.otaa("0004A30B001C0530", "70B3D57ED0000001", APP_KEY)
    gw = SimGateway("AA555A0000000001")

    push = gwmp.parse_datagram(gw.push_data(dev.join_request(dev_nonce=0x1234)))
    assert push.gateway_eui == "aa555a0000000001" and push.token == gw.last_token
    rx = push.rxpk[0]
    assert (rx.freq, rx.datr, rx.modu, rx.stat) == (868.1, "SF7BW125", "LORA", 1)
    assert regions.dr_from_datr("EU868", rx.datr) == 5
    jr = parse_phy(rx.data)
    assert isinstance(jr, JoinRequest) and verify_join_request(jr, APP_KEY)
    assert (jr.dev_eui, jr.app_eui) == ("0004a30b001c0530", "70b3d57ed0000001")
    assert jr.dev_nonce == 0x1234

    # Server side: answer with a join-accept in a PULL_RESP.
    nwk, app = derive_session_keys(APP_KEY, 0x000042, 0x000013, jr.dev_nonce)
    txpk = packets.TxPacket(tmst=rx.tmst + 5_000_000, freq=868.1, datr="SF7BW125",
                         data=build_join_accept(APP_KEY, 0x42, 0x13, 0x26000001))
    reply = gw.parse_reply(gwmp.pull_resp(2, 7, txpk))
    accepted = dev.decode_downlink(reply.txpk.data)
    assert accepted["mtype"] == "join_accept" and accepted["dev_addr"] == 0x26000001
    assert (dev.nwk_s_key, dev.app_s_key) == (nwk, app)

    pushed = gwmp.parse_datagram(gw.push_data(dev.uplink(2, b"\x01\x02", confirmed=True)))
    first = parse_phy(pushed.rxpk[0].data)
    second = parse_phy(dev.uplink(2, b"\x03"))
    assert first.confirmed and (first.f_cnt16, second.f_cnt16) == (0, 1)
    assert decrypt_payload(second, nwk, app, 1) == b"\x03"
    assert dev.uplink(2, b"\x03", fcnt=1) == second.raw  # forced retransmission

    down = build_data_frame(MType.UNCONFIRMED_DATA_DOWN, 0x26000001, 0, nwk, app, f_port=5,
                            payload=b"cmd", ack=True)
    got = dev.decode_downlink(down)
    assert got["payload"] == b"cmd" and got["ack"] and got["f_port"] == 5 and got["f_cnt"] == 0
    with pytest.raises(ProtocolError) as e:
        dev.decode_downlink(down[:-1] + bytes([down[-1] ^ 1]))
    assert e.value.code == "bad_mic"
    with pytest.raises(ProtocolError):
        dev.decode_downlink(first.raw)  # an uplink is not a downlink


def test_sim_abp_and_gateway_datagrams():
    dev = SimDevice.abp("49be7df1", NWK.hex(), APP.hex(), fcnt=2)
    assert dev.uplink(1, b"test") == UPLINK
    gw = SimGateway("aa555a0000000002", version=1)
    pull = gwmp.parse_datagram(gw.pull_data())
    assert isinstance(pull, gwmp.PullData) and pull.version == 1
    ack = gwmp.parse_datagram(gw.tx_ack(pull.token, "TOO_LATE"))
    assert isinstance(ack, gwmp.TxAck) and ack.error == "TOO_LATE"
    stat = gwmp.parse_datagram(gw.stat(rxnb=3))
    assert stat.stat.rxnb == 3 and stat.rxpk == []
    two = gwmp.parse_datagram(gw.push_data(UPLINK, UPLINK, rssi=-100, lsnr=-7.25))
    assert len(two.rxpk) == 2 and two.rxpk[0].rssi == -100 and two.rxpk[1].lsnr == -7.25
    assert two.rxpk[0].tmst == 1_000_000 and gw.tmst == 2_000_000


# --------------------------------------------------------------------------------------------
# Regions


def test_eu868_table():
    eu = regions.REGIONS["EU868"]
    assert [r.datr for r in eu.data_rates] == [
        "SF12BW125", "SF11BW125", "SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125", "SF7BW250",
        50000,
    ]
    assert [regions.max_payload(eu, dr) for dr in range(8)] == [51, 51, 51, 115, 222, 222, 222, 222]
    assert [r.max_mac_payload for r in eu.data_rates] == [59, 59, 59, 123, 230, 230, 230, 230]
    assert eu.data_rates[7].modulation == "FSK" and eu.data_rates[0].modulation == "LORA"
    assert eu.default_channels == (868.1, 868.3, 868.5)
    assert (eu.rx1_delay_s, eu.rx2_delay_s) == (1, 2)
    assert (eu.join_accept_delay1_s, eu.join_accept_delay2_s) == (5, 6)
    assert regions.rx2("EU868") == (869.525, 0)
    assert regions.data_rate(eu, eu.rx2_dr).datr == "SF12BW125"


@pytest.mark.parametrize("dr", range(8))
def test_largest_payload_per_dr_fits_a_frame(dr):
    n = regions.max_payload("EU868", dr)
    phy = build_data_frame(MType.UNCONFIRMED_DATA_DOWN, DEV_ADDR, 1, NWK, APP, f_port=1,
                           payload=bytes(n))
    assert len(phy) == 1 + regions.EU868.data_rates[dr].max_mac_payload + 4


@pytest.mark.parametrize(
    "datr, dr",
    [("SF12BW125", 0), ("SF9BW125", 3), ("SF7BW125", 5), ("sf7bw125", 5), ("SF7BW250", 6),
     (50000, 7)],
)
def test_dr_from_datr(datr, dr):
    assert regions.dr_from_datr("EU868", datr) == dr
    assert regions.dr_from_datr(regions.EU868, datr) == dr


@pytest.mark.parametrize(
    "freq, dr, offset, expected",
    [(868.1, 5, 0, (868.1, 5)), (868.5, 0, 0, (868.5, 0)), (868.3, 5, 2, (868.3, 3)),
     (867.7, 1, 5, (867.7, 0)), (868.1, 7, 1, (868.1, 6))],
)
def test_rx1(freq, dr, offset, expected):
    assert regions.rx1("EU868", freq, dr, offset) == expected


@pytest.mark.parametrize(
    "call, code, words",
    [
        (lambda: regions.dr_from_datr("EU868", "SF7BW500"), "bad_datr", "'SF7BW500'"),
        (lambda: regions.dr_from_datr("EU868", "50000"), "bad_datr", "EU868"),
        (lambda: regions.dr_from_datr("EU868", 125), "bad_datr", "125"),
        (lambda: regions.max_payload("EU868", 8), "bad_dr", "DR0..DR7"),
        (lambda: regions.max_payload("EU868", -1), "bad_dr", "DR0..DR7"),
        (lambda: regions.rx1("EU868", 868.1, 16), "bad_dr", "DR0..DR7"),
        (lambda: regions.rx1("EU868", 868.1, 5, 6), "bad_dr", "RX1DROffset"),
        (lambda: regions.rx2("XX999"), "bad_region", "known: EU868, US915"),
    ],
)
def test_region_errors(call, code, words):
    with pytest.raises(ProtocolError) as e:
        call()
    assert e.value.code == code and words in e.value.message

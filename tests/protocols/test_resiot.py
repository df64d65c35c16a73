import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.errors import ProtocolError
from gatewayd.connectors.monitor.resiot import (COMM_TYPES, Action, Communication, StreamFilter, action_to_frame,
                                                encode_action, encode_envelope, format_dt, parse_filter,
                                                to_envelope)
from gatewayd.connectors.monitor.tx_request import TxError, TxRequest, parse_tx, tx_reply

PLUS2 = timezone(timedelta(hours=2))
# 09:36:46.529531 at +02:00
DT = datetime(2017, 6, 15, 7, 36, 46, 529531, tzinfo=timezone.utc)
DT_TEXT = "2017-06-15T09:36:46.5295310+02:00"


def comm(comm_type: str, **kw) -> Communication:
    base = dict(comm_type=comm_type, connector="lorawan", dev_eui="0732227A557D8679", dt=DT, seq=7)
    base.update(kw)
    return Communication(**base)


# ---------------------------------------------------------------------------------------------
# Envelopes: one test per CommType against the literal expected object


def test_comm_gwalive():
    c = comm(
        "comm_gwalive",
        dev_eui="",
        gateway_euis=("218000AC0000A05F",),
        extra={"rxnb": 3, "ackr": 100.0, "lati": None},
    )
    assert to_envelope(c, PLUS2) == {
        "CommType": "comm_gwalive",
        "MsgType": "comm_gwalive",
        "Connector": "6c6f726177616e",
        "AppEui": "",
        "DevEui": "",
        "Port": "",
        "GatewayEUIs": ["218000ac0000a05f"],
        "Payload": "",
        "Extra": {"rxnb": "3", "ackr": "100.0"},
        "DT": DT_TEXT,
        "Seq": 7,
    }


def test_comm_join():
    c = comm("comm_join", app_eui="006C3B194374AC7F", gateway_euis=("218000ac0000a05f",))
    assert to_envelope(c, PLUS2) == {
        "CommType": "comm_join",
        "MsgType": "comm_join",
        "Connector": "6c6f726177616e",
        "AppEui": "006c3b194374ac7f",
        "DevEui": "0732227a557d8679",
        "Port": "",
        "GatewayEUIs": ["218000ac0000a05f"],
        "Payload": "",
        "Extra": {},
        "DT": DT_TEXT,
        "Seq": 7,
    }


def test_comm_gwrx():
    c = comm(
        "comm_gwrx",
        app_eui="006c3b194374ac7f",
        port=128,
        gateway_euis=("218000ac0000a05f",),
        payload=bytes.fromhex("9B690291"),
        extra={"rssi": -18, "snr": 9.5, "crc": True},
    )
    assert to_envelope(c, PLUS2) == {
        "CommType": "comm_gwrx",
        "MsgType": "comm_gwrx",
        "Connector": "6c6f726177616e",
        "AppEui": "006c3b194374ac7f",
        "DevEui": "0732227a557d8679",
        "Port": "128",
        "GatewayEUIs": ["218000ac0000a05f"],
        "Payload": "9b690291",
        "Extra": {"rssi": "-18", "snr": "9.5", "crc": "true"},
        "DT": DT_TEXT,
        "Seq": 7,
    }


def test_comm_rx_like_the_document():
    c = comm(
        "comm_rx",
        app_eui="006c3b194374ac7f",
        port=128,
        gateway_euis=("218000AC0000a05f", "B827EBFFFE000001"),
        payload=bytes.fromhex("9b690291010f1b2401ce01c0"),
        extra={
            "adr": True,
            "channel": 4,
            "duplicate": False,
            "frequency": 867.3,
            "modBW": 125,
            "rssi": -18,
            "seqno": 1953,
            "sf": 7,
            "snr": 9.5,
        },
        seq=123,
    )
    assert to_envelope(c, PLUS2) == {
        "CommType": "comm_rx",
        "MsgType": "comm_rx",
        "Connector": "6c6f726177616e",
        "AppEui": "006c3b194374ac7f",
        "DevEui": "0732227a557d8679",
        "Port": "128",
        "GatewayEUIs": ["218000ac0000a05f", "b827ebfffe000001"],
        "Payload": "9b690291010f1b2401ce01c0",
        "Extra": {
            "adr": "true",
            "channel": "4",
            "duplicate": "false",
            "frequency": "867.3",
            "modBW": "125",
            "rssi": "-18",
            "seqno": "1953",
            "sf": "7",
            "snr": "9.5",
        },
        "DT": DT_TEXT,
        "Seq": 123,
    }


def test_comm_rx_from_a_websocket_device():
    payload = b'{"temperature":22.5}'
    c = comm(
        "comm_rx",
        connector="ws",
        dev_eui="Dev-42-ABC",
        payload=payload,
        extra={"type": "telemetry", "temperature": 22.5, "tags": ["a", "b"]},
    )
    assert to_envelope(c, PLUS2) == {
        "CommType": "comm_rx",
        "MsgType": "comm_rx",
        "Connector": "7773",
        "AppEui": "",
        "DevEui": "Dev-42-ABC",  # a device id, not an EUI: kept verbatim
        "Port": "",
        "GatewayEUIs": [],
        "Payload": payload.hex(),
        "Extra": {"type": "telemetry", "temperature": "22.5", "tags": '["a","b"]'},
        "DT": DT_TEXT,
        "Seq": 7,
    }


def test_comm_tx_like_the_document():
    c = comm(
        "comm_tx",
        app_eui="006c3b194374ac7f",
        port=1,
        payload=b"%%",
        command=None,
        reference=None,
        confirmation=False,
        priority=0,
        window="BOTH",
        extra={"ignored": "yes"},
    )
    env = to_envelope(c, PLUS2)
    assert env == {
        "CommType": "comm_tx",
        "MsgType": "comm_tx",
        "Connector": "6c6f726177616e",
        "AppEui": "006c3b194374ac7f",
        "DevEui": "0732227a557d8679",
        "Port": "1",
        "GatewayEUIs": [],
        "Payload": "2525",
        "Command": "",
        "Reference": "",
        "Confirmation": False,
        "Extra": {"priority": 0, "window": "BOTH"},
        "DT": DT_TEXT,
        "Seq": 7,
    }
    assert list(env) == [
        "CommType", "MsgType", "Connector", "AppEui", "DevEui", "Port", "GatewayEUIs",
        "Payload", "Command", "Reference", "Confirmation", "Extra", "DT", "Seq",
    ]


def test_comm_tx_with_reference_and_confirmation():
    c = comm(
        "comm_tx", port=50, payload=b"HI!", command="reboot", reference="abcdefgh",
        confirmation=True, priority=2, window="RX2",
    )
    env = to_envelope(c, PLUS2)
    assert env["Command"] == "reboot"
    assert env["Reference"] == "abcdefgh"
    assert env["Confirmation"] is True
    assert env["Extra"] == {"priority": 2, "window": "RX2"}
    assert env["Payload"] == "484921"


def test_comm_txsendack():
    c = comm("comm_txsendack", port=50, reference="abcdefgh", error=None,
             gateway_euis=("218000ac0000a05f",))
    assert to_envelope(c, PLUS2) == {
        "CommType": "comm_txsendack",
        "MsgType": "comm_txsendack",
        "Connector": "6c6f726177616e",
        "AppEui": "",
        "DevEui": "0732227a557d8679",
        "Port": "50",
        "GatewayEUIs": ["218000ac0000a05f"],
        "Payload": "",
        "Reference": "abcdefgh",
        "Error": "",
        "Extra": {},
        "DT": DT_TEXT,
        "Seq": 7,
    }
    refused = comm("comm_txsendack", reference="r", error="TOO_LATE")
    assert to_envelope(refused, PLUS2)["Error"] == "TOO_LATE"


def test_comm_txconfirm():
    c = comm("comm_txconfirm", connector="terminal", dev_eui="AYSK1234", reference="ref-1",
             extra={"ok": True})
    assert to_envelope(c, PLUS2) == {
        "CommType": "comm_txconfirm",
        "MsgType": "comm_txconfirm",
        "Connector": "7465726d696e616c",
        "AppEui": "",
        "DevEui": "AYSK1234",
        "Port": "",
        "GatewayEUIs": [],
        "Payload": "",
        "Reference": "ref-1",
        "Extra": {"ok": "true"},
        "DT": DT_TEXT,
        "Seq": 7,
    }


def test_comm_gwtx():
    c = comm("comm_gwtx", port=5, reference="ref-9", gateway_euis=("218000AC0000A05F",), payload=b"\xca\xfe",
             extra={"kind": "data", "window": "RX1", "frequency": 868.1, "datr": "SF7BW125", "ack": False})
    assert to_envelope(c, PLUS2) == {
        "CommType": "comm_gwtx",
        "MsgType": "comm_gwtx",
        "Connector": "6c6f726177616e",
        "AppEui": "",
        "DevEui": "0732227a557d8679",
        "Port": "5",
        "GatewayEUIs": ["218000ac0000a05f"],
        "Payload": "cafe",
        "Reference": "ref-9",
        "Extra": {"kind": "data", "window": "RX1", "frequency": "868.1", "datr": "SF7BW125", "ack": "false"},
        "DT": DT_TEXT,
        "Seq": 7,
    }


def test_comm_txinfo_and_comm_txsendconfirm():
    info = comm("comm_txinfo", port=5, reference="ref-9", gateway_euis=("218000AC0000A05F",),
                extra={"kind": "data", "token": 77, "via": "udp"})
    assert to_envelope(info, PLUS2) == {
        "CommType": "comm_txinfo",
        "MsgType": "comm_txinfo",
        "Connector": "6c6f726177616e",
        "AppEui": "",
        "DevEui": "0732227a557d8679",
        "Port": "5",
        "GatewayEUIs": ["218000ac0000a05f"],
        "Payload": "",
        "Reference": "ref-9",
        "Extra": {"kind": "data", "token": "77", "via": "udp"},
        "DT": DT_TEXT,
        "Seq": 7,
    }
    done = comm("comm_txsendconfirm", reference="ref-9", error="", extra={"outcome": "sent"})
    envelope = to_envelope(done, PLUS2)
    assert (envelope["Reference"], envelope["Error"], envelope["Extra"]) == ("ref-9", "", {"outcome": "sent"})
    assert list(envelope) == ["CommType", "MsgType", "Connector", "AppEui", "DevEui", "Port", "GatewayEUIs",
                              "Payload", "Reference", "Error", "Extra", "DT", "Seq"]
    assert to_envelope(comm("comm_txsendconfirm", error="TOO_LATE"), PLUS2)["Error"] == "TOO_LATE"


def test_encode_envelope_is_compact_json_in_order():
    text = encode_envelope(comm("comm_join"), PLUS2)
    assert text.startswith('{"CommType":"comm_join","MsgType":"comm_join","Connector":"6c6f726177616e"')
    assert " " not in text
    assert json.loads(text) == to_envelope(comm("comm_join"), PLUS2)


_extra_values = st.one_of(st.text(), st.integers(-(1 << 70), 1 << 70), st.booleans(), st.none(),
                         st.floats(allow_nan=False), st.lists(st.integers(0, 9), max_size=3))


@settings(max_examples=200)
@given(comm_type=st.sampled_from(sorted(COMM_TYPES)), text=st.text(), extra=st.dictionaries(st.text(), _extra_values,
                                                                                           max_size=4),
       seq=st.integers(0, 1 << 70), port=st.none() | st.integers(0, 255))
def test_encode_envelope_writes_what_the_standard_encoder_writes(comm_type, text, extra, seq, port):
    c = comm(comm_type, dev_eui=text, app_eui=text[:8], seq=seq, port=port, extra=extra, reference=text,
             command=text, error=text, gateway_euis=(text,))
    assert encode_envelope(c, PLUS2) == json.dumps(to_envelope(c, PLUS2), separators=(",", ":"))


def test_every_comm_type_has_a_test_above():
    assert set(COMM_TYPES) == {
        "comm_gwalive", "comm_join", "comm_gwrx", "comm_gwtx", "comm_rx", "comm_tx", "comm_txinfo",
        "comm_txsendack", "comm_txsendconfirm", "comm_txconfirm",
    }


def test_format_dt():
    assert format_dt(DT, PLUS2) == DT_TEXT
    assert format_dt(DT, timezone.utc) == "2017-06-15T07:36:46.5295310+00:00"
    minus = timezone(-timedelta(hours=3, minutes=30))
    assert format_dt(DT.replace(microsecond=0), minus) == "2017-06-15T04:06:46.0000000-03:30"
    with pytest.raises(ValueError):
        format_dt(datetime(2017, 1, 1), PLUS2)


def test_communication_rejects_bad_values():
    with pytest.raises(ValueError):
        comm("comm_bogus")
    with pytest.raises(ValueError):
        comm("comm_rx", dt=datetime(2017, 1, 1))
    with pytest.raises(ValueError):
        comm("comm_rx", port=256)


# ---------------------------------------------------------------------------------------------
# TX requests

DOC_EXAMPLE = """{
    "function": "TX",
    "Payload": "HI!",
    "AppEui": "ABCDEF1234567890",
    "DevEui": "0987654321ABCDEF",
    "Connector": "",
    "Port": 50,
    "Reference": "abcdefgh",
    "Raw": true,
    "Confirm": true
}"""


def tx(**fields) -> str:
    base = {"function": "TX", "Payload": "484921", "AppEui": "ABCDEF1234567890",
            "DevEui": "0987654321ABCDEF", "Port": 50, "Reference": "r1"}
    for key, value in fields.items():
        if value is DROP:
            base.pop(key, None)
        else:
            base[key] = value
    return json.dumps(base)


DROP = object()


def test_document_example_parses():
    req = parse_tx(DOC_EXAMPLE)
    assert req == TxRequest(
        payload=b"HI!",
        app_eui="abcdef1234567890",
        dev_eui="0987654321abcdef",
        dev_is_eui=True,
        connector="",
        port=50,
        ws_command=None,
        reference="abcdefgh",
        raw=True,
        confirm=True,
    )
    assert tx_reply(True, "", req.reference) == '{"Result":"Success","Details":"","Reference":"abcdefgh"}'


def test_document_example_hex_variant():
    req = parse_tx(DOC_EXAMPLE.replace('"HI!"', '"484921"').replace('"Raw": true', '"Raw": false'))
    assert req.payload == b"HI!"
    assert req.raw is False


def test_bytes_frame():
    assert parse_tx(DOC_EXAMPLE.encode()).payload == b"HI!"


def test_deveui_spellings():
    upper = json.loads(tx(DevEui=DROP))
    upper["DevEUI"] = "0987654321abcdef"
    upper["AppEUI"] = upper.pop("AppEui")
    req = parse_tx(json.dumps(upper))
    assert req.dev_eui == "0987654321abcdef"
    assert req.app_eui == "abcdef1234567890"
    assert parse_tx(tx()).dev_eui == "0987654321abcdef"


def test_same_field_twice_must_agree():
    obj = json.loads(tx())
    obj["DevEUI"] = "0987654321ABCDEF"
    assert parse_tx(json.dumps(obj)).dev_eui == "0987654321abcdef"  # same value: fine
    obj["DevEUI"] = "1111111111111111"
    with pytest.raises(TxError) as e:
        parse_tx(json.dumps(obj))
    assert e.value.details == "DevEui is given twice with different values (DevEui and DevEUI)"
    assert e.value.reference == "r1"


def test_port_as_numeric_string():
    assert parse_tx(tx(Port="50")).port == 50
    assert parse_tx(tx(Port="0")).port == 0
    assert parse_tx(tx(Port=255)).port == 255


def test_euis_in_any_case():
    req = parse_tx(tx(DevEui="0987654321aBcDeF", AppEui="abcDEF1234567890"))
    assert req.dev_eui == "0987654321abcdef"
    assert req.app_eui == "abcdef1234567890"
    assert req.dev_is_eui


def test_device_id_instead_of_eui():
    req = parse_tx(tx(DevEui="Term-SN-AYSK0001", AppEui="", Connector="terminal",
                      WSCommand="opendoor"))
    assert req.dev_eui == "Term-SN-AYSK0001"
    assert req.dev_is_eui is False
    assert req.app_eui == ""
    assert req.connector == "terminal"
    assert req.ws_command == "opendoor"


def test_optional_fields_absent_or_null():
    req = parse_tx(tx(Reference=DROP, AppEui=DROP, Raw=None, Confirm=None, Connector=None))
    assert (req.reference, req.app_eui, req.raw, req.confirm, req.connector) == ("", "", False, False, "")


def test_connector_as_hex_of_its_name():
    assert parse_tx(tx(Connector="6c6f726177616e")).connector == "lorawan"
    assert parse_tx(tx(Connector="LoRaWAN")).connector == "lorawan"


def test_window_defaults_to_both_and_is_read_in_any_case():
    assert parse_tx(DOC_EXAMPLE).window == "BOTH"
    assert parse_tx(json.dumps({**json.loads(DOC_EXAMPLE), "window": "rx2"})).window == "RX2"
    assert parse_tx(json.dumps({**json.loads(DOC_EXAMPLE), "Window": ""})).window == "BOTH"


def test_empty_hex_payload_is_allowed():
    assert parse_tx(tx(Payload="")).payload == b""


def test_payload_size_limit():
    assert len(parse_tx(tx(Payload="ab" * 242)).payload) == 242
    assert len(parse_tx(tx(Payload="x" * 242, Raw=True)).payload) == 242


def test_reference_limit():
    assert parse_tx(tx(Reference="x" * 128)).reference == "x" * 128


@pytest.mark.parametrize(
    "fields, details",
    [
        ({"function": DROP}, 'function is required and must be "TX"'),
        ({"function": None}, 'function is required and must be "TX"'),
        ({"function": "RX"}, 'function "RX" is not supported, only "TX" is'),
        ({"function": "tx"}, 'function "tx" is not supported, only "TX" is'),
        ({"function": 1}, 'function must be the string "TX"'),
        ({"DevEui": DROP}, "DevEui is required"),
        ({"DevEui": ""}, "DevEui is required"),
        ({"DevEui": 12}, "DevEui must be a string"),
        ({"DevEui": "has space"},
         "DevEui must be a device EUI (16 hex digits) or a device id of 1 to 64 printable ASCII "
         "characters without spaces"),
        ({"DevEui": "x" * 65},
         "DevEui must be a device EUI (16 hex digits) or a device id of 1 to 64 printable ASCII "
         "characters without spaces"),
        ({"AppEui": "ABCDEF123456789"}, "AppEui must be 16 hex digits, got 15 characters"),
        ({"AppEui": "ABCDEF123456789G"}, "AppEui must be 16 hex digits, got 16 characters"),
        ({"AppEui": 5}, "AppEui must be a string"),
        ({"Connector": 3}, "Connector must be a string"),
        ({"Connector": "no spaces"},
         "Connector must be a connector name (lower-case letters, digits, '_', '.', '-', at most 32 "
         "characters) or the hex of one"),
        ({"Port": DROP}, "Port is required"),
        ({"Port": 256}, "Port 256 is out of range 0..255"),
        ({"Port": -1}, "Port -1 is out of range 0..255"),
        ({"Port": "300"}, "Port 300 is out of range 0..255"),
        ({"Port": "5a"}, "Port must be an integer or a string of digits"),
        ({"Port": ""}, "Port must be an integer or a string of digits"),
        ({"Port": 50.0}, "Port must be an integer or a string of digits"),
        ({"Port": True}, "Port must be an integer or a string of digits"),
        ({"Port": [50]}, "Port must be an integer or a string of digits"),
        ({"WSCommand": 7}, "WSCommand must be a string"),
        ({"WSCommand": "x" * 65}, "WSCommand must be at most 64 printable characters"),
        ({"WSCommand": "a\nb"}, "WSCommand must be at most 64 printable characters"),
        ({"Raw": "true"}, "Raw must be true or false"),
        ({"Confirm": 1}, "Confirm must be true or false"),
        ({"Payload": DROP}, "Payload is required"),
        ({"Payload": 1234}, "Payload must be a string"),
        ({"Payload": "HI!"},
         "Payload must be hex with an even number of digits (Raw is false), got 3 characters"),
        ({"Payload": "zz"}, "Payload must be hex digits only (Raw is false)"),
        ({"Payload": "48 9"}, "Payload must be hex digits only (Raw is false)"),
        ({"Payload": "ab" * 243}, "Payload is 243 bytes, the limit is 242"),
        ({"Payload": "é" * 122, "Raw": True}, "Payload is 244 bytes, the limit is 242"),
        ({"Payload": "\ud800", "Raw": True}, "Payload is not valid Unicode text"),
        ({"Window": "RX3"}, 'Window "RX3" is not one of RX1, RX2, BOTH'),
        ({"Window": 1}, "Window must be a string"),
    ],
)
def test_validation_failures_echo_the_reference(fields, details):
    with pytest.raises(TxError) as e:
        parse_tx(tx(**fields))
    assert e.value.details == details
    assert e.value.reference == "r1"
    assert json.loads(tx_reply(False, e.value.details, e.value.reference)) == {
        "Result": "Fail", "Details": details, "Reference": "r1",
    }


@pytest.mark.parametrize(
    "frame, details",
    [
        ("not json", "frame is not valid JSON"),
        ("", "frame is not valid JSON"),
        ('{"function":"TX",', "frame is not valid JSON"),
        ("[" * 5000, "frame is not valid JSON"),
        (b"\xff\xfe", "frame is not valid UTF-8"),
        ("[1,2]", "frame must be a JSON object"),
        ('"TX"', "frame must be a JSON object"),
        ("null", "frame must be a JSON object"),
        (" " * 16385, "frame is 16385 characters long, the limit is 16384"),
        (tx(Reference=5), "Reference must be a string"),
        (tx(Reference="x" * 129), "Reference is 129 characters long, the limit is 128"),
    ],
)
def test_unreadable_frames(frame, details):
    with pytest.raises(TxError) as e:
        parse_tx(frame)
    assert e.value.details == details
    assert e.value.reference == ""


def test_tx_error_is_a_protocol_error():
    with pytest.raises(ProtocolError) as e:
        parse_tx("{}")
    assert e.value.code == "bad_tx"


def test_tx_reply_is_compact():
    assert tx_reply(False, "Port is required", "") == '{"Result":"Fail","Details":"Port is required","Reference":""}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
tx_like = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.sampled_from(["TX", "0987654321abcdef", "50", "", "48"])
        for name in ["function", "Payload", "AppEui", "DevEUI", "DevEui", "Connector", "Port",
                     "WSCommand", "Reference", "Raw", "Confirm"]
    },
)


def _parse_only_tx_errors(frame: str | bytes) -> None:
    try:
        req = parse_tx(frame)
    except TxError as e:
        assert isinstance(e.details, str) and e.details
        assert isinstance(e.reference, str)
    else:
        assert isinstance(req, TxRequest)


@settings(max_examples=150, deadline=None)
@given(st.text() | st.binary())
def test_arbitrary_text_raises_only_tx_error(frame):
    _parse_only_tx_errors(frame)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_tx_error(value):
    _parse_only_tx_errors(json.dumps(value))


@settings(max_examples=200, deadline=None)
@given(tx_like)
def test_tx_shaped_objects_raise_only_tx_error(obj):
    _parse_only_tx_errors(json.dumps(obj))


# ---------------------------------------------------------------------------------------------
# Filters


def test_filter_absent_matches_everything():
    f = parse_filter({"key": "gwk_whatever", "since": "10"})
    assert f == StreamFilter(None, None, None)
    assert f.matches_comm(comm("comm_rx"))


def test_filter_by_type():
    f = parse_filter({"types": "comm_rx, comm_tx"})
    assert f.types == frozenset({"comm_rx", "comm_tx"})
    assert f.matches_comm(comm("comm_rx"))
    assert f.matches_comm(comm("comm_tx"))
    assert not f.matches_comm(comm("comm_join"))


def test_filter_unknown_type():
    with pytest.raises(ValueError) as e:
        parse_filter({"types": "comm_rx,comm_bogus"})
    assert str(e.value) == (
        "types: unknown type 'comm_bogus'; known: comm_gwalive, comm_gwrx, comm_gwtx, comm_join, comm_rx, "
        "comm_tx, comm_txconfirm, comm_txinfo, comm_txsendack, comm_txsendconfirm"
    )


def test_filter_by_device_is_case_insensitive_for_euis():
    f = parse_filter({"dev": "0732227A557D8679,Dev-42"})
    assert f.dev == frozenset({"0732227a557d8679", "Dev-42"})
    assert f.matches_comm(comm("comm_rx", dev_eui="0732227a557d8679"))
    assert f.matches_comm(comm("comm_rx", dev_eui="0732227A557D8679"))
    assert f.matches_comm(comm("comm_rx", dev_eui="Dev-42", connector="ws"))
    assert not f.matches_comm(comm("comm_rx", dev_eui="dev-42", connector="ws"))  # ids are exact
    assert not f.matches_comm(comm("comm_rx", dev_eui="1111111111111111"))


def test_filter_bad_device():
    with pytest.raises(ValueError, match="dev: "):
        parse_filter({"dev": "x" * 65})


def test_filter_by_connector():
    f = parse_filter({"connector": "LoRaWAN,7773"})
    assert f.connector == frozenset({"lorawan", "ws"})
    assert f.matches_comm(comm("comm_rx"))
    assert f.matches_comm(comm("comm_rx", connector="ws"))
    assert not f.matches_comm(comm("comm_rx", connector="http"))
    with pytest.raises(ValueError, match="connector: "):
        parse_filter({"connector": "bad name"})


def test_filter_combined_and_blank():
    f = parse_filter({"types": "comm_rx", "dev": "0732227a557d8679", "connector": "lorawan"})
    assert f.matches_comm(comm("comm_rx"))
    assert not f.matches_comm(comm("comm_join"))
    assert parse_filter({"types": "", "dev": " , ", "connector": ""}) == StreamFilter()


# ---------------------------------------------------------------------------------------------
# Actions


def action(action_type="device_created", target="Dev-42", **kw) -> Action:
    base = dict(action_type=action_type, actor="admin", target=target,
                details={"name": "boiler", "enabled": True}, dt=DT, seq=99)
    base.update(kw)
    return Action(**base)


def test_action_frame():
    frame = action_to_frame(action(), PLUS2)
    assert frame == {
        "ActionType": "device_created",
        "Actor": "admin",
        "Target": "Dev-42",
        "Details": {"name": "boiler", "enabled": True},
        "DT": DT_TEXT,
        "Seq": 99,
    }
    assert list(frame) == ["ActionType", "Actor", "Target", "Details", "DT", "Seq"]
    assert json.loads(encode_action(action(), PLUS2)) == frame


def test_action_filters():
    any_type = parse_filter({"types": "device_created,login_failed", "dev": "0732227A557D8679"},
                            known_types=None)
    assert any_type.matches_action(action(target="0732227a557d8679"))
    assert not any_type.matches_action(action(target="Dev-42"))
    assert not any_type.matches_action(action("token_rotated", target="0732227a557d8679"))
    # Actions have no connector, so a connector filter does not hide them.
    assert parse_filter({"connector": "ws"}).matches_action(action())
    with pytest.raises(ValueError):
        parse_filter({"types": "device_created"})  # not a CommType

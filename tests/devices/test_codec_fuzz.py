"""Hypothesis against the device codecs: whatever arrives, only ProtocolError comes out, and every
message the server can encode decodes back to itself."""

import json

from hypothesis import given, settings, strategies as st

from gatewayd.connectors.devices import json_codec as device_json, xml_codec as device_xml
from gatewayd.connectors.devices.messages import Event, Telemetry
from gatewayd.errors import ProtocolError

FAST = settings(max_examples=300, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
message_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["register", "telemetry", "event", "ping", "command_result", "attendance", "x", 3])},
    optional={"payload": json_values, "id": json_values, "event": json_values, "device_id": json_values,
              "token": json_values, "ts": json_values, "ok": json_values, "records": json_values})


def decodes_or_refuses(codec, frame) -> None:
    try:
        codec.decode(frame, max_chars=4096)
    except ProtocolError as exc:
        assert exc.code and exc.message


@FAST
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_json_any_frame(frame):
    decodes_or_refuses(device_json, frame)


@FAST
@given(message_like)
def test_json_message_shaped(obj):
    decodes_or_refuses(device_json, json.dumps(obj))


xml_names = st.sampled_from(["register", "telemetry", "event", "ping", "command_result", "attendance", "record",
                             "v", "x", "a-b"])
xml_fragments = st.recursive(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10),
    lambda inner: st.builds(lambda n, attrs, body: f"<{n}{attrs}>{body}</{n}>", xml_names,
                            st.sampled_from(["", ' id="1"', ' name="e"', ' ok="true"', ' device_id="d" token="t"',
                                             ' enrollid="1" time="2026-01-01 10:00:00"']),
                            st.lists(inner, max_size=3).map("".join)),
    max_leaves=10)
xml_prologues = st.sampled_from(["", '<?xml version="1.0"?>', "<!DOCTYPE x>", '<!DOCTYPE x [<!ENTITY e "v">]>',
                                 "<!-- c -->", "&e;"])


@FAST
@given(xml_prologues, xml_fragments)
def test_xml_structured(prologue, body):
    decodes_or_refuses(device_xml, prologue + body)


@FAST
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_xml_any_frame(frame):
    decodes_or_refuses(device_xml, frame)


scalars = st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0xD7FF), max_size=10)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@FAST
@given(st.dictionaries(names, scalars, max_size=5), st.one_of(st.none(), st.integers(0, 10**9)))
def test_round_trip_both_dialects(payload, msg_id):
    for message in (Telemetry(payload, None, msg_id), Event("door", payload, None, msg_id)):
        assert device_json.decode(device_json.encode(message)) == message
        decoded = device_xml.decode(device_xml.encode(message))
        assert type(decoded) is type(message)
        assert set(decoded.payload) == set(payload)

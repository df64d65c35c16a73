"""The JSON dialect reads frames with orjson where that gives what the standard decoder gives:
hypothesis holds the fast path to the standard one, value for value (types, float bits, key order)
and error for error."""

import json
import math
import struct

from hypothesis import example, given, settings, strategies as st

from gatewayd.connectors.devices import json_codec
from gatewayd.errors import ProtocolError

MANY = settings(max_examples=400, deadline=None)


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def outcome(load, text):
    try:
        return ("ok", load(text))
    except ProtocolError as exc:
        return ("error", exc.code, exc.message)


def check(text: str) -> None:
    if not text.lstrip(" \t\r\n").startswith("{"):
        text = "{" + text
    fast, strict = outcome(json_codec._load_object, text), outcome(json_codec._load_object_strict, text)
    assert fast[0] == strict[0]
    if fast[0] == "ok":
        assert same(fast[1], strict[1]), (fast, strict)
    else:
        assert fast == strict


keys = st.text(max_size=6) | st.sampled_from(["a", "type", "payload", "\ud800", "\udc00x"])
numbers = (st.integers(-2**70, 2**70) | st.integers(-2**64, 2**64) | st.floats(allow_nan=True)
           | st.floats(width=32) | st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308]))
values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25)
number_texts = st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)


@MANY
@given(st.dictionaries(keys, values, max_size=6), st.booleans())
def test_documents_read_the_same(obj, ascii_only):
    check(json.dumps(obj, ensure_ascii=ascii_only, allow_nan=True))


@MANY
@given(st.lists(st.tuples(keys, number_texts), max_size=5))
def test_numbers_read_the_same(members):
    check("{" + ",".join(f"{json.dumps(k)}:{n}" for k, n in members) + "}")


@MANY
@given(st.text(max_size=60), st.text(alphabet='{}[]":,.-+eE0123456789 \\u\n\ttrue' + "nullfalseNaInfity", max_size=60))
@example("", '"a":1e400}')
@example("", '"a":1.7976931348623159e308}')
@example("", '"a":18446744073709551616}')
@example("", '"a":-9223372036854775809}')
@example("", '"a":-9223372036854775808,"b":9223372036854775808}')
@example("", '"a":[{"b":[1,-18446744073709551616]}]}')
@example("", '"id":18446744073709551616,"type":"telemetry"}')
@example("", '"a":"\\ud800"}')
@example("", '"a":1,"b":2,"a":3}')
@example("", '"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}')
@example("", '"a":' + "[" * 5000 + "]" * 5000 + "}")
def test_any_text_reads_the_same(junk, jsonish):
    check(junk)
    check("{" + jsonish)

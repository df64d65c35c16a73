import json

import pytest
from hypothesis import given, strategies as st

from gatewayd.journal.record import Record, RecordError, decode_line, encode_line

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(seq=st.integers(1, 2**40), type_=st.text(min_size=1, max_size=30),
       data=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_round_trip(seq, type_, data):
    record = Record(seq, "2026-11-22T03:04:05.123456Z", type_, data)
    line = encode_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_line(line) == record
    assert json.loads(line)["seq"] == seq  # every line stays plain JSON


def test_every_single_byte_flip_is_detected():
    line = encode_line(Record(7, "2026-11-22T03:04:05.123456Z", "device.telemetry", {"t": 21.5, "id": "x"}))
    for index in range(len(line) - 1):
        damaged = bytearray(line)
        damaged[index] ^= 0x01
        with pytest.raises(RecordError):
            decode_line(bytes(damaged))


def test_truncated_line_is_rejected_at_every_length():
    line = encode_line(Record(1, "2026-11-22T03:04:05.123456Z", "x", {"a": 1}))
    for cut in range(len(line) - 1):
        with pytest.raises(RecordError):
            decode_line(line[:cut])

import json
import zlib

import pytest
from hypothesis import given, strategies as st

from gatewayd.journal.record import (
    Record, RecordError, data_text, decode_line, decode_lines, decode_unterminated, encode_line, lines_check_out,
)

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


@given(seq=st.integers(1, 2**40), type_=st.text(min_size=1, max_size=30),
       data=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_data_text_is_the_data_as_encoded_alone(seq, type_, data):
    import orjson

    assert data_text(encode_line(Record(seq, "2026-11-22T03:04:05.123456Z", type_, data))) == orjson.dumps(data)


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


def one_at_a_time(lines):
    try:
        return [decode_unterminated(line) for line in lines]
    except RecordError:
        return None


@given(data=st.data())
def test_many_lines_at_once_agree_with_one_at_a_time(data):
    records = [Record(seq, "2026-11-22T03:04:05.123456Z", "t", {"v": seq}) for seq in range(1, 6)]
    lines = [encode_line(record)[:-1] for record in records]
    index = data.draw(st.integers(0, len(lines) - 1))
    damage = data.draw(st.sampled_from(["none", "flip", "cut", "upper-case checksum", "empty", "no type"]))
    line = lines[index]
    if damage == "flip":
        position = data.draw(st.integers(0, len(line) - 1))
        lines[index] = line[:position] + bytes([line[position] ^ 0x04]) + line[position + 1:]
    elif damage == "cut":
        lines[index] = line[:data.draw(st.integers(0, len(line) - 1))]
    elif damage == "upper-case checksum":
        lines[index] = line[:-10] + line[-10:-2].upper() + line[-2:]
    elif damage == "empty":
        lines[index] = b""
    elif damage == "no type":  # checksum right, record incomplete
        body = b'{"seq":%d,"ts":"x","data":{}}' % (index + 1)
        lines[index] = body[:-1] + b',"crc":"%08x"}' % zlib.crc32(body)
    expected = one_at_a_time(lines)
    try:
        fast = decode_lines(lines)
    except RecordError:
        fast = None
    # The fast path may only leave a line to the slow one, never accept what the slow one refuses.
    assert fast == expected or (fast is None and damage == "upper-case checksum")
    assert lines_check_out(lines) == (fast is not None)
    if damage == "none":
        assert fast == records

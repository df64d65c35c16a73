"""Hostile input to the monitoring parsers: `since`, TX frames through the dispatcher, and the
CLI's line formatter. None of them may raise anything but their documented error."""

from __future__ import annotations

import json
from types import SimpleNamespace

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.connectors.monitor.cli import format_line
from gatewayd.comm_tables import Comms, CommTables
from gatewayd.connectors.monitor.streams import parse_since
from gatewayd.connectors.monitor.tx_dispatch import submit_tx

from .helpers import FakeTx

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=20)
tx_like = st.fixed_dictionaries({}, optional={
    "function": st.sampled_from(["TX", "tx", "RX"]) | json_values,
    "DevEui": st.sampled_from(["0987654321abcdef", "dev-a", ""]) | json_values,
    "DevEUI": st.sampled_from(["0987654321ABCDEF"]) | json_values,
    "Port": st.integers(-5, 300) | st.text(max_size=4) | json_values,
    "Payload": st.text(max_size=12) | json_values,
    "Reference": st.text(max_size=10) | json_values,
    "Raw": st.booleans() | json_values,
    "Confirm": st.booleans() | json_values,
    "Connector": st.sampled_from(["", "fake", "66616b65", "lorawan"]) | json_values,
    "WSCommand": st.text(max_size=8) | json_values,
})


@given(st.text(max_size=30))
def test_since_is_a_whole_number_or_a_value_error(text):
    try:
        value = parse_since(text)
    except ValueError as exc:
        assert str(exc).startswith("since: ")
        return
    assert value is None if text == "" else value == int(text) and value >= 0


@settings(max_examples=200, deadline=None)
@given(st.one_of(tx_like, json_values, st.text(max_size=40), st.binary(max_size=40)))
def test_any_tx_frame_gets_a_reply_and_nothing_raises(frame):
    fake = FakeTx("fake", {"0987654321abcdef"})
    core = SimpleNamespace(state=SimpleNamespace(parts={}), comms=CommTables([Comms(tx_handlers=(fake,))]),
                           settings=SimpleNamespace(journal=SimpleNamespace(durable_timeout=1.0)))
    text = frame if isinstance(frame, (str, bytes)) else json.dumps(frame)
    outcome = trio.run(submit_tx, core, text)
    reply = outcome.reply()
    assert set(reply) == {"Result", "Details", "Reference"}
    assert (reply["Result"] == "Success") == outcome.ok == bool(fake.sent)
    assert outcome.ok or reply["Details"]
    if outcome.ok:
        assert isinstance(frame, dict) and reply["Reference"] == frame.get("Reference", "")


@given(st.one_of(json_values.map(json.dumps), st.text(max_size=60)), st.booleans())
def test_the_line_formatter_shows_anything(text, actions):
    assert isinstance(format_line(text, actions=actions), str)

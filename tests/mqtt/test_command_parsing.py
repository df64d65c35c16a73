"""Command payloads (pure): strict shapes and precise refusals."""

import json

import pytest
from hypothesis import given, strategies as st

from gatewayd.connectors.mqtt.commands import (MAX_COMMAND_BYTES, CommandRefused, is_tx_object, parse_device_command,
                                               parse_downlink, parse_object, parse_terminal_command)


def test_valid_shapes():
    command = parse_device_command({"command": "reboot", "payload": {"a": 1}, "expires_in": 60, "reference": "r"})
    assert (command.command, command.payload, command.expires_in, command.reference) == ("reboot", {"a": 1}, 60, "r")
    downlink = parse_downlink({"port": 5, "payload": "CAFE", "confirmed": True})
    assert (downlink.port, downlink.data, downlink.confirmed, downlink.reference) == (5, b"\xca\xfe", True, "")
    terminal = parse_terminal_command({"command": "opendoor", "params": {"doornum": 1}})
    assert (terminal.command, terminal.params) == ("opendoor", {"doornum": 1})
    assert is_tx_object({"Function": "TX"}) and not is_tx_object({"command": "x"})


@pytest.mark.parametrize("parse, obj, error", [
    (parse_device_command, {"command": ""}, "command is required"),
    (parse_device_command, {"command": "x", "payload": []}, "payload must be a JSON object"),
    (parse_device_command, {"command": "x", "expires_in": True}, "expires_in"),
    (parse_device_command, {"command": "x", "ttl": 5}, "unknown key 'ttl'"),
    (parse_device_command, {"command": "x" * 65}, "at most 64"),
    (parse_downlink, {"port": 0, "payload": ""}, "1 to 223"),
    (parse_downlink, {"port": 5, "payload": "abc"}, "hex"),
    (parse_downlink, {"port": 5, "payload": "ab", "confirmed": "yes"}, "true or false"),
    (parse_terminal_command, {"command": "x", "params": 1}, "params must be a JSON object"),
    (parse_terminal_command, {"command": "x", "reference": "r" * 129}, "reference"),
])
def test_refusals_say_what_is_wrong(parse, obj, error):
    with pytest.raises(CommandRefused, match=error):
        parse(obj)


def test_payload_limits():
    with pytest.raises(CommandRefused, match="limit"):
        parse_object(b"{" + b" " * MAX_COMMAND_BYTES + b"}")
    with pytest.raises(CommandRefused, match="not JSON"):
        parse_object(b"\xff")


@given(st.binary(max_size=200) | st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                                              lambda inner: st.lists(inner, max_size=3)
                                              | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                                              max_leaves=12).map(lambda v: json.dumps(v).encode()))
def test_any_payload_is_parsed_or_refused_never_crashes(payload):
    try:
        obj = parse_object(payload)
    except CommandRefused:
        return
    for parse in (parse_device_command, parse_downlink, parse_terminal_command):
        try:
            parse(obj)
        except CommandRefused:
            pass

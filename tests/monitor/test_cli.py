"""`gatewayd monitor`: readable lines, raw JSON, and refusals, against a running daemon."""

from __future__ import annotations

import json
from functools import partial

import trio

from gatewayd.connectors.monitor.cli import _since_from_reason, _with_since, format_line
from tests.conftest import run_cli

from .helpers import FAKE_RECORD

RX = {"CommType": "comm_rx", "MsgType": "comm_rx", "Connector": "6c6f726177616e", "AppEui": "006c3b194374ac7f",
      "DevEui": "0732227a557d8679", "Port": "128", "GatewayEUIs": ["218000ac0000a05f"],
      "Payload": "9b690291010f1b2401ce01c0", "Extra": {"rssi": "-18", "snr": "9.5", "sf": "7"},
      "DT": "2017-06-15T09:36:46.5295312+02:00", "Seq": 123}


def test_human_lines():
    assert format_line(json.dumps(RX)) == (
        "2017-06-15 09:36:46.529  #123  comm_rx         lorawan   0732227a557d8679  port 128  "
        "9b690291010f1b2401ce01c0  rssi -18  snr 9.5  gw 218000ac0000a05f")
    ws_rx = {**RX, "Connector": "7773", "DevEui": "dev-1", "Port": "", "GatewayEUIs": [],
             "Payload": b'{"t":21.5}'.hex(), "Extra": {"type": "telemetry"}}
    assert format_line(json.dumps(ws_rx)) == \
        '2017-06-15 09:36:46.529  #123  comm_rx         ws        dev-1  {"t":21.5}'
    tx = {**ws_rx, "CommType": "comm_tx", "Command": "set_led", "Reference": "r-1", "Payload": "00ff"}
    assert format_line(json.dumps(tx)).endswith("dev-1  00ff  command set_led  ref r-1")
    action = {"ActionType": "device_created", "Actor": "cli", "Target": "dev-1", "Details": {"name": "boiler"},
              "DT": "2017-06-15T09:36:46.5295312+02:00", "Seq": 9}
    assert format_line(json.dumps(action), actions=True) == (
        '2017-06-15 09:36:46.529  #9  device_created         cli -> dev-1  {"name":"boiler"}')
    assert format_line('{"Result":"Fail","Details":"Port is required","Reference":"x"}') == \
        "TX Fail: Port is required (reference 'x')"
    assert format_line("not json") == "not json"


def test_resume_helpers():
    assert _since_from_reason("too slow; resume with since=42") == 42
    assert _since_from_reason("going away") is None
    assert _with_since("ws://h:1/monitor/communications?types=comm_rx&since=3", 42) == \
        "ws://h:1/monitor/communications?types=comm_rx&since=42"


async def cli(*args: str):
    return await trio.to_thread.run_sync(partial(run_cli, *args, timeout=30))


async def test_monitor_command_prints_the_stream(daemon, monkeypatch):
    state = str(daemon.state_dir)
    for n in range(3):
        await daemon.core.hub.publish(FAKE_RECORD, {"dev": f"dev-{n}", "payload": "0102", "port": 9})
    monkeypatch.setenv("GATEWAYD_API_KEY", daemon.api_key)
    raw = await cli("monitor", "--state-dir", state, "--since", "0", "--count", "2", "--json",
                    "--dev", "dev-1,dev-2")
    human = await cli("monitor", "--state-dir", state, "--since", "0", "--count", "1", "--types", "comm_rx")
    actions = await cli("monitor", "--state-dir", state, "--actions", "--since", "1", "--count", "1")
    assert raw.returncode == 0, raw.stderr
    frames = [json.loads(line) for line in raw.stdout.splitlines()]
    assert [f["DevEui"] for f in frames] == ["dev-1", "dev-2"]
    assert human.returncode == 0, human.stderr
    assert "comm_rx" in human.stdout and "dev-0  port 9  0102" in human.stdout
    assert actions.returncode == 0 and "admin_password_set" in actions.stdout


async def test_monitor_command_refusals(daemon, monkeypatch, tmp_path):
    state = str(daemon.state_dir)
    monkeypatch.delenv("GATEWAYD_API_KEY", raising=False)
    no_key = await cli("monitor", "--state-dir", state, "--count", "1")
    assert no_key.returncode == 1 and "an API key is needed" in no_key.stderr
    wrong = await cli("monitor", "--state-dir", state, "--count", "1", "--key", "gwk_00000000_nope")
    assert wrong.returncode == 1 and "HTTP 401" in wrong.stderr and "nope" not in wrong.stderr
    nothing = await cli("monitor", "--state-dir", str(tmp_path / "empty"), "--key", "k")
    assert nothing.returncode == 1 and "no running gatewayd found" in nothing.stderr

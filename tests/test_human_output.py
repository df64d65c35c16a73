"""Control characters from devices never reach a person's terminal raw: CLI tables and pairs,
`gatewayd monitor` lines, log lines."""

from __future__ import annotations

import io
import json
import logging

import trio

from gatewayd import ops
from gatewayd.logs import setup_logging
from gatewayd.connectors.monitor.cli import format_line, json_line
from gatewayd.gateway import open_core
from gatewayd.textsafe import printable
from tests.conftest import make_settings, run_cli

HOSTILE = "\x1b]0;owned\x07\x1b[2J\r\n\x9b31m"


def assert_clean(text: str) -> None:
    assert not any(ch in text for ch in "\x1b\x07\r\x9b"), repr(text)


def test_printable_escapes_every_control_character():
    assert printable("a\x1b[31mb\x07\x00\x7f\x9b") == "a\\e[31mb\\x07\\x00\\x7f\\x9b"
    assert printable("line1\nline2\tx", keep_newlines=True) == "line1\nline2\\tx"
    assert printable("plain ünïcode") == "plain ünïcode"


def test_monitor_lines_and_json_carry_no_control_characters():
    action = {"ActionType": "auth_failed", "Actor": "10.0.0.9", "Target": HOSTILE, "Details": {"kind": HOSTILE},
              "DT": "2026-06-12T10:00:00Z", "Seq": 7}
    comm = {"CommType": "comm_rx", "Connector": "7773", "DevEui": HOSTILE, "Extra": {"type": HOSTILE},
            "DT": "2026-06-12T10:00:00Z", "Seq": 8}
    for frame in (action, comm):
        text = json.dumps(frame, ensure_ascii=False)
        assert_clean(format_line(text))
        assert_clean(json_line(text))
        assert json.loads(json_line(text)) == frame


def test_log_lines_escape_control_characters():
    stream = io.StringIO()
    handler = setup_logging("info", stream, journal=False)
    try:
        logging.getLogger("gatewayd.test").warning("terminal %s is waiting", HOSTILE)
    finally:
        logging.getLogger().removeHandler(handler)
    assert_clean(stream.getvalue().rstrip("\n"))
    assert "\\e]0;owned" in stream.getvalue()


async def test_cli_tables_escape_control_characters(tmp_path):
    settings = make_settings(tmp_path / "state")
    async with open_core(settings, online=False) as core:
        await ops.call(core, "apikey.create", {"name": "evil" + HOSTILE[:12]})  # a name not checked for them
    result = await trio.to_thread.run_sync(lambda: run_cli("apikey", "list", "--state-dir", str(tmp_path / "state")))
    assert result.returncode == 0, result.stderr
    assert "evil\\e]0;owned" in result.stdout
    assert_clean(result.stdout)

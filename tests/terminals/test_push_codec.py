"""The PUSH codec without sockets: parsers never fail on hostile bytes, keep every good row, and
command lines cannot be broken by their fields."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, strategies as st

from gatewayd.connectors.terminals.push import codec, command_lines
from gatewayd.errors import ProtocolError

from .pushsim import attlog_row

times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda t: t.replace(microsecond=0))
good_rows = st.tuples(st.integers(0, 4_294_967_295), times, st.integers(0, 5), st.integers(0, 25)).map(
    lambda r: attlog_row(*r))
bad_rows = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=60).filter(lambda t: t.strip()),
    st.builds(lambda pin, t: f"{pin}\t{t:%Y-%m-%d %H:%M:%S}", st.text("abc-+ ", min_size=1, max_size=5), times),
)


@given(st.lists(st.tuples(st.booleans(), good_rows, bad_rows), max_size=40), st.sampled_from(["\n", "\r\n"]))
def test_attlog_keeps_every_good_row_and_counts_the_bad(rows, newline):
    lines = [good if keep else bad for keep, good, bad in rows]
    assert all(_is_good(good) for _, good, _ in rows)  # every row a terminal writes is taken
    upload = codec.parse_attlog(newline.join(lines).encode())
    expected_good = [line for line in lines if _is_good(line)]
    assert len(upload.punches) == len(expected_good) == upload.accepted
    assert upload.rows == len([line for line in lines if line.strip()])
    assert upload.bad == upload.rows - upload.accepted
    assert len(upload.errors) == min(upload.bad, codec.MAX_ERRORS_KEPT)
    for punch, line in zip(upload.punches, expected_good):
        assert punch.time == line.split("\t")[1].strip() and punch.enrollid == int(line.split("\t")[0])
    numbers = {e.line for e in upload.errors}
    assert all(1 <= n <= len(lines) for n in numbers)


def _is_good(line: str) -> bool:
    try:
        codec._attlog_row(line)
        return True
    except ProtocolError:
        return False


@given(st.binary(max_size=2000))
def test_parsers_never_raise_on_bytes(body):
    for parse in (codec.parse_attlog, codec.parse_operlog, codec.parse_options):
        parse(body)
    results, rows = codec.parse_devicecmd(body)
    assert rows.rows >= len(results)
    assert len(codec.parse_options(body)) <= codec.MAX_INFO_KEYS


@given(st.text(max_size=30), st.sampled_from(["gbk", "gb18030", "cp1252", "big5", "utf-8"]))
def test_names_in_any_encoding_are_kept_clean(name, encoding):
    try:
        raw = f"USER PIN=7\tName={name}\tPri=0".encode(encoding)
    except UnicodeEncodeError:
        return
    upload = codec.parse_operlog(raw, encoding if encoding != "utf-8" else "gbk")
    for user in upload.users:
        assert user.pin == 7 and len(user.name) <= 64
        assert not any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in user.name)


def test_gbk_names_and_utf8_first():
    assert codec.parse_operlog("USER PIN=1\tName=张伟".encode("gbk"), "gbk").users[0].name == "张伟"
    assert codec.parse_operlog("USER PIN=1\tName=张伟".encode("utf-8"), "gbk").users[0].name == "张伟"
    assert codec.decode_line(b"\xff\xfe", "no-such-codec") == "\ufffd\ufffd"


@given(st.lists(st.tuples(st.integers(-2000, 10**6), st.text("0123456789", min_size=1, max_size=8)), max_size=10))
def test_devicecmd_lines_and_repeated_keys(items):
    body = "\n".join(f"ID={cid}&Return=5&CMD=X&Return={code}" for code, cid in items).encode()
    results, rows = codec.parse_devicecmd(body)
    assert [(r.id, r.code) for r in results] == [(cid, code) for code, cid in items]  # the last key wins
    assert rows.bad == 0


def test_devicecmd_info_lines_attach_to_their_command():
    results, rows = codec.parse_devicecmd(b"ID=9&Return=0&CMD=INFO\n~DeviceName=F22\nUserCount=3\nID=10&Return=-1004")
    assert results[0].info == {"DeviceName": "F22", "UserCount": "3"} and results[1].describe().startswith(
        "Return=-1004 (table not supported)")
    assert not results[1].ok and rows.bad == 0


@given(st.text(max_size=80))
def test_command_fields_never_break_the_line(name):
    try:
        params = command_lines.check_command("setuserinfo", {"enrollid": 5, "name": name})
    except ProtocolError as exc:
        assert exc.code in ("invalid", "missing_field")
        return
    line = command_lines.command_line("setuserinfo", params)
    assert "\n" not in line and "\r" not in line
    assert line.split("\t")[1] == "Name=" + name.strip()


@pytest.mark.parametrize("name, params, line", [
    ("getuserinfo", {"enrollid": "1001"}, "DATA QUERY USERINFO PIN=1001"),
    ("deleteuser", {"enrollid": 1001, "backupnum": 12}, "DATA DELETE USERINFO PIN=1001"),
    ("setuserinfo", {"enrollid": 1, "name": "Ann", "backupnum": 11, "record": 123456},
     "DATA UPDATE USERINFO PIN=1\tName=Ann\tPri=0\tCard=123456\tGrp=1\tTZ=0000000000000000"),
    ("getalllog", {"stn": True}, "DATA QUERY ATTLOG StartTime=2000-01-01 00:00:00\tEndTime=2099-12-31 23:59:59"),
    ("reboot", {}, "REBOOT"), ("info", {}, "INFO"), ("cleanlog", {}, "CLEAR LOG"), ("check", {}, "CHECK"),
    ("raw", {"line": "DATA UPDATE USERINFO PIN=1\tName=A"}, "DATA UPDATE USERINFO PIN=1\tName=A"),
])
def test_command_lines(name, params, line):
    assert command_lines.command_line(name, command_lines.check_command(name, params)) == line


@pytest.mark.parametrize("name, params, message", [
    ("getuserinfo", {}, "needs 'enrollid'"), ("getuserinfo", {"enrollid": 0}, "between 1 and"),
    ("getuserinfo", {"enrollid": True}, "must be an integer"), ("reboot", {"delay": 5}, "does not take"),
    ("getalllog", {"from": "2026-07-01", "to": "2026-06-01"}, "is after"),
    ("getalllog", {"from": "2026-02-30"}, "must be a date"),
    ("setuserinfo", {"enrollid": 1, "name": "A", "backupnum": 3, "record": "x"}, "templates are enrolled"),
    ("raw", {"line": "A\rB"}, "line break"), ("raw", {"line": "A\x00"}, "control characters"),
    ("opendoor", {}, "PUSH terminals do not take"),
])
def test_commands_refused(name, params, message):
    with pytest.raises(ProtocolError) as caught:
        command_lines.check_command(name, params)
    assert message in caught.value.message


def test_query_and_options_reply():
    query = codec.parse_query({"sn": "ABC-1", "table": "attlog", "Stamp": "9999", "pushver": "2.4\x00.1"})
    assert (query.sn, query.table, query.stamp, query.pushver) == ("ABC-1", "ATTLOG", "9999", "2.4.1")
    with pytest.raises(ProtocolError, match="no SN"):
        codec.parse_query({"table": "ATTLOG"})
    text = codec.build_options("ABC-1", {"OPERLOG": "55"}, "-5", "gatewayd 1")
    lines = text.splitlines()
    assert lines[0] == "GET OPTION FROM: ABC-1" and "Stamp=0" in lines and "OpStamp=55" in lines
    assert "TimeZone=-5" in lines and text.endswith("\n")
    assert codec.build_commands([]) == "OK" and codec.build_commands([(7, "INFO")]) == "C:7:INFO\n"


def test_timezone_option_hours_or_minutes():
    summer = datetime(2026, 7, 1, tzinfo=timezone.utc)
    assert codec.timezone_value(ZoneInfo("Europe/Rome"), summer) == "2"
    assert codec.timezone_value(ZoneInfo("Europe/Rome"), summer - timedelta(days=180)) == "1"
    assert codec.timezone_value(ZoneInfo("America/New_York"), summer) == "-4"
    assert codec.timezone_value(ZoneInfo("Asia/Kolkata"), summer) == "330"
    assert codec.timezone_value(ZoneInfo("UTC"), summer) == "0"


def test_long_rows_are_refused_alone():
    body = attlog_row(1, datetime(2026, 1, 1)).encode() + b"\n" + b"9" * (codec.MAX_LINE_BYTES + 1) + b"\n" + \
        attlog_row(2, datetime(2026, 1, 1)).encode()
    upload = codec.parse_attlog(body)
    assert upload.accepted == 2 and upload.bad == 1 and "limit is" in upload.errors[0].message


@given(st.dictionaries(st.sampled_from(["SN", "sn", "table", "Stamp", "OpStamp", "options", "pushver", "x"]),
                       st.text(max_size=80), max_size=8))
def test_query_strings_parse_or_fail_precisely(args):
    try:
        query = codec.parse_query(args)
    except ProtocolError as exc:
        assert exc.code in ("missing_field", "invalid") and exc.message
        return
    assert 1 <= len(query.sn) <= 64 and query.sn.isascii() and query.sn.isprintable()
    assert query.table is None or query.table.isupper() or query.table.strip("_") == ""
    assert query.pushver is None or "\x00" not in query.pushver

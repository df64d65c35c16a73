"""Attendance terminal ("cmd/ret") codec."""

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.errors import ProtocolError
from gatewayd.connectors.terminals.command_codec import ADMIN, BACKUPNUM, COMMANDS, DESTRUCTIVE, TerminalReply, decode_reply, encode_command, is_reply, page_done, punches_in_reply
from gatewayd.connectors.terminals.punches import INOUT, MAX_RECORDS_PER_BATCH, Punch, dedup_key, parse_punch
from gatewayd.connectors.terminals.codec import REQUESTS, CheckLive, SendLog, TerminalReg, decode_request, encode_failure, encode_reply, format_cloudtime
from gatewayd.connectors.terminals.fields import loads_lenient, parse_local_time

LIMIT = 64 * 1024
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def request(text):
    return decode_request(loads_lenient(text, LIMIT))


def code_of(call, *args):
    with pytest.raises(ProtocolError) as caught:
        call(*args)
    assert caught.value.message
    return caught.value.code


# ---------------------------------------------------------------------------------------------
# The seed's HTTP examples

SEED_REG = """{
"cmd": "reg",
"sn": "YOUR_DEVICE_SN",
"cpusn": "CPU_SERIAL",
"devinfo": {
"modelname": "device-model",
"usersize": 1000,
"firmware": "v1.0.0",
"mac": "00:11:22:33:44:55"
}
}"""

SEED_SENDLOG = """{
"cmd": "sendlog",
"sn": "YOUR_DEVICE_SN",
"count": 1,
"logindex": 0,
"record": [{
"enrollid": 1,
"time": "2026-06-12T09:15:30",
"mode": 1,
"inout": 0,
"event": 0,
"temp": 36.5
}]
}"""

SEED_CHECKLIVE = """{
"cmd": "checklive",
"sn": "YOUR_DEVICE_SN",
"time": "2026-06-12T09:20:00"
}"""


def test_seed_reg():
    assert request(SEED_REG) == TerminalReg(
        sn="YOUR_DEVICE_SN",
        cpusn="CPU_SERIAL",
        devinfo={"usersize": 1000, "modelname": "device-model", "firmware": "v1.0.0", "mac": "00:11:22:33:44:55"},
    )
    reply = encode_reply("reg", True, cloudtime="2026-06-12T10:00:00Z")
    assert reply == '{"ret":"reg","result":true,"cloudtime":"2026-06-12T10:00:00Z"}'


def test_seed_sendlog():
    assert request(SEED_SENDLOG) == SendLog(
        sn="YOUR_DEVICE_SN",
        count=1,
        logindex=0,
        records=[
            Punch(1, "2026-06-12T09:15:30", datetime(2026, 6, 12, 9, 15, 30), mode=1, inout=0, event=0, temp=36.5)
        ],
    )
    assert encode_reply("sendlog", True, count=1, logindex=0, cloudtime="2026-06-12T09:16:00Z") == (
        '{"ret":"sendlog","result":true,"count":1,"logindex":0,"cloudtime":"2026-06-12T09:16:00Z"}'
    )


def test_seed_checklive():
    assert request(SEED_CHECKLIVE) == CheckLive("YOUR_DEVICE_SN", "2026-06-12T09:20:00")
    assert encode_reply("checklive", True, cloudtime="2026-06-12T09:20:05Z") == (
        '{"ret":"checklive","result":true,"cloudtime":"2026-06-12T09:20:05Z"}'
    )


def test_seed_python_client_bodies():
    # What the seed's Python example sends: no logindex, no event, isoformat() times.
    now = datetime(2026, 6, 12, 9, 15, 30, 123456)
    body = json.dumps(
        {"cmd": "sendlog", "sn": "YOUR_DEVICE_SN", "count": 1,
         "record": [{"enrollid": 123, "time": now.isoformat(), "mode": 1, "inout": 0}]}
    )
    log = request(body)
    assert log.logindex is None and log.count == 1
    assert log.records == [Punch(123, "2026-06-12T09:15:30.123456", now, mode=1, inout=0, event=0)]
    reg = request('{"cmd":"reg","sn":"YOUR_DEVICE_SN","cpusn":"12345","devinfo":{"modelname":"device","firmware":"v1.0"}}')
    assert reg == TerminalReg("YOUR_DEVICE_SN", "12345", {"modelname": "device", "firmware": "v1.0"})
    live = request(json.dumps({"cmd": "checklive", "sn": "YOUR_DEVICE_SN", "time": now.isoformat()}))
    assert live == CheckLive("YOUR_DEVICE_SN", "2026-06-12T09:15:30.123456")


def test_failure_reply():
    assert encode_failure("reg", "terminal not approved") == (
        '{"ret":"reg","result":false,"reason":"terminal not approved"}'
    )
    assert encode_reply("reg", True, cloudtime="2026-06-12 12:00:00", nosenduser=True, skipped=None) == (
        '{"ret":"reg","result":true,"cloudtime":"2026-06-12 12:00:00","nosenduser":true}'
    )


# ---------------------------------------------------------------------------------------------
# Firmware quirks


def test_flat_devinfo():
    reg = request(
        '{"cmd":"reg","sn":"ZX0006827500","cpusn":"123456789","modelname":"tfs30","usersize":"3000",'
        '"fpsize":3000,"logsize":100000,"usednewlog":5000,"fpalgo":"thbio3.0","firmware":"th600w v6.1",'
        '"time":"2016-03-25 13:49:30","mac":"00-01-A9-01-00-01","colour":"red"}'
    )
    assert reg.devinfo == {
        "usersize": 3000, "fpsize": 3000, "logsize": 100000, "usednewlog": 5000, "modelname": "tfs30",
        "fpalgo": "thbio3.0", "firmware": "th600w v6.1", "time": "2016-03-25 13:49:30", "mac": "00-01-A9-01-00-01",
    }


def test_devinfo_nested_wins_and_bad_values_are_dropped():
    reg = request(
        '{"cmd":"reg","sn":"S","modelname":"flat","devinfo":{"modelname":"nested","usersize":"lots",'
        '"firmware":6.1,"mac":["x"]}}'
    )
    assert reg == TerminalReg("S", None, {"modelname": "nested", "firmware": "6.1"})
    assert code_of(request, '{"cmd":"reg","sn":"S","devinfo":"tfs30"}') == "invalid"


def test_cpusn_as_number():
    assert request('{"cmd":"reg","sn":"S","cpusn":123456789}').cpusn == "123456789"


def test_trailing_commas_stray_spaces_and_bom():
    text = (
        '\ufeff{ "cmd" : " sendlog ", " sn ":"  ZX1  ", "count ":2,\n "record ":[\n'
        '  {"enrollid ":" 7 ","time ":" 2026-06-12 09:15:30 ","mode":"1","inout":1,"event":0,},\n'
        '  {"enrollid":8,"time":"2026-06-12 09:16:00","mode":1,"inout":0,"event":0 , },\n ],\n}'
    )
    log = request(text)
    assert log.sn == "ZX1" and log.count == 2
    assert [(p.enrollid, p.time, p.inout) for p in log.records] == [
        (7, "2026-06-12 09:15:30", 1),
        (8, "2026-06-12 09:16:00", 0),
    ]
    assert request(text.encode("utf-8")) == log
    assert request(b"\xef\xbb\xbf" + text.removeprefix("\ufeff").encode()) == log


def test_commas_inside_strings_survive_the_repair():
    assert loads_lenient('{"reason":"a, ]","x":[1,],"y":"\\"}, "}', LIMIT) == {"reason": "a, ]", "x": [1], "y": '"},'}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(36.5, 36.5), (3650, 36.5), ("3650", 36.5), (" 36.7 ", 36.7), (100, 100.0), (3721, 37.21), (0, 0.0)],
)
def test_temperature_in_hundredths(raw, expected):
    punch = parse_punch({"enrollid": 1, "time": "2026-06-12 09:15:30", "temp": raw})
    assert punch.temp == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-12 09:15:30", datetime(2026, 6, 12, 9, 15, 30)),
        ("2026-06-12T09:15:30", datetime(2026, 6, 12, 9, 15, 30)),
        ("2026-06-12T09:15:30.123456", datetime(2026, 6, 12, 9, 15, 30, 123456)),
        ("2026-06-12 09:15:30.5", datetime(2026, 6, 12, 9, 15, 30, 500000)),
        ("2026-6-2 9:05:07", datetime(2026, 6, 2, 9, 5, 7)),
    ],
)
def test_time_formats(text, expected):
    assert parse_local_time(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2026-06-12T09:15:30Z", "2026-06-12T09:15:30+02:00", "2026-06-12T09:15:30.1234567", "2026-02-30 10:00:00",
     "2026-06-12", "12/06/2026 09:15:30", "2026-06-12 24:00:00", "２０２６-06-12 09:15:30", "", None],
)
def test_time_formats_refused(text):
    with pytest.raises(ProtocolError, match="time") as caught:
        parse_local_time(text)
    assert caught.value.code == "invalid"


def test_dedup_key_is_equal_across_time_formats():
    def punch(time):
        return parse_punch({"enrollid": 5, "time": time, "mode": 1, "inout": 0, "event": 0})

    keys = {dedup_key("ZX1", punch(t)) for t in
            ("2026-06-12 09:15:30", "2026-06-12T09:15:30", "2026-06-12T09:15:30.000", "2026-6-12 9:15:30")}
    assert keys == {("ZX1", 5, "2026-06-12 09:15:30", 0, 0)}
    assert dedup_key("ZX1", punch("2026-06-12T09:15:31")) not in keys
    assert dedup_key("ZX2", punch("2026-06-12T09:15:30")) not in keys
    mode_differs = parse_punch({"enrollid": 5, "time": "2026-06-12 09:15:30", "mode": 8})
    assert dedup_key("ZX1", mode_differs) in keys  # mode is not part of the key


def test_punch_defaults_numeric_strings_and_image():
    punch = parse_punch({"enrollid": "12", "time": "2026-06-12 09:15:30", "verifymode": "13", "image": " QUJD "})
    assert punch == Punch(12, "2026-06-12 09:15:30", datetime(2026, 6, 12, 9, 15, 30), 0, 0, 0, None, 13, "QUJD")
    assert parse_punch({"enrollid": 0, "time": "2026-06-12 09:15:30", "image": ""}).image is None


@pytest.mark.parametrize(
    "record",
    [
        [],
        {"time": "2026-06-12 09:15:30"},
        {"enrollid": 1},
        {"enrollid": True, "time": "2026-06-12 09:15:30"},
        {"enrollid": -1, "time": "2026-06-12 09:15:30"},
        {"enrollid": 1.5, "time": "2026-06-12 09:15:30"},
        {"enrollid": 2**40, "time": "2026-06-12 09:15:30"},
        {"enrollid": 1, "time": 1718183730},
        {"enrollid": 1, "time": "2026-06-12 09:15:30", "mode": "fp"},
        {"enrollid": 1, "time": "2026-06-12 09:15:30", "inout": [0]},
        {"enrollid": 1, "time": "2026-06-12 09:15:30", "temp": "warm"},
        {"enrollid": 1, "time": "2026-06-12 09:15:30", "temp": 1e308 * 10},
        {"enrollid": 1, "time": "2026-06-12 09:15:30", "image": "x" * (512 * 1024 + 1)},
    ],
)
def test_bad_records_are_invalid(record):
    assert code_of(parse_punch, record) == "invalid"


def test_sendlog_count_mismatch_is_tolerated_and_defaults():
    log = request('{"cmd":"sendlog","sn":"S","count":5,"logindex":"10","record":[]}')
    assert (log.count, log.logindex, log.records) == (5, 10, [])
    log = request('{"cmd":"sendlog","sn":"S","record":[{"enrollid":1,"time":"2026-06-12 09:15:30"}]}')
    assert (log.count, log.logindex) == (1, None)


def test_sendlog_batch_limit():
    record = {"enrollid": 1, "time": "2026-06-12 09:15:30"}
    body = {"cmd": "sendlog", "sn": "S", "record": [record] * MAX_RECORDS_PER_BATCH}
    assert len(decode_request(body).records) == MAX_RECORDS_PER_BATCH
    body["record"] = [record] * (MAX_RECORDS_PER_BATCH + 1)
    with pytest.raises(ProtocolError, match="1001 entries, the limit is 1000"):
        decode_request(body)


# ---------------------------------------------------------------------------------------------
# Request errors


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ({"sn": "S"}, "missing_field"),
        ({"cmd": "reg"}, "missing_field"),
        ({"cmd": "sendlog", "sn": "S"}, "missing_field"),
        ({"cmd": "sendfoo", "sn": "S"}, "unknown_cmd"),
        ({"cmd": "senduser", "sn": "S"}, "missing_field"),
        ({"cmd": "senduser", "sn": "S", "enrollid": 0}, "invalid"),
        ({"cmd": "senduser", "sn": "S", "enrollid": 1, "record": ["x"]}, "invalid"),
        ({"cmd": "senduser", "sn": "S", "enrollid": 1, "admin": 7}, "invalid"),
        ({"cmd": "getuserlist", "sn": "S"}, "unknown_cmd"),
        ({"cmd": 1, "sn": "S"}, "invalid"),
        ({"cmd": "reg", "sn": ""}, "invalid"),
        ({"cmd": "reg", "sn": "   "}, "invalid"),
        ({"cmd": "reg", "sn": 12345}, "invalid"),
        ({"cmd": "reg", "sn": "S" * 65}, "invalid"),
        ({"cmd": "reg", "sn": "ZX\x01"}, "invalid"),
        ({"cmd": "reg", "sn": "ZXé"}, "invalid"),
        ({"cmd": "reg", "sn": "S", "cpusn": ["x"]}, "invalid"),
        ({"cmd": "sendlog", "sn": "S", "record": {}}, "invalid"),
        ({"cmd": "sendlog", "sn": "S", "record": [], "count": -1}, "invalid"),
        ({"cmd": "sendlog", "sn": "S", "record": [], "logindex": "ten"}, "invalid"),
        ({"cmd": "sendlog", "sn": "S", "record": [{"enrollid": 1}]}, "invalid"),
        ({"cmd": "checklive", "sn": "S", "time": 5}, "invalid"),
        ([], "invalid"),
    ],
)
def test_request_error_codes(obj, code):
    assert code_of(decode_request, obj) == code


def test_request_messages_name_the_field():
    with pytest.raises(ProtocolError, match=r"record\[1\]\.time must look like"):
        decode_request({"cmd": "sendlog", "sn": "S", "record": [
            {"enrollid": 1, "time": "2026-06-12 09:15:30"}, {"enrollid": 2, "time": "noon"}]})
    with pytest.raises(ProtocolError, match="sn is 65 characters long, the limit is 64"):
        decode_request({"cmd": "reg", "sn": "S" * 65})


def test_cmd_is_case_and_space_insensitive():
    assert decode_request({"cmd": " CheckLive ", "sn": "S"}) == CheckLive("S", None)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("", "bad_json"),
        ("[1,2]", "bad_json"),
        ('"reg"', "bad_json"),
        ('{"cmd":"reg",', "bad_json"),
        ('{"temp":NaN}', "bad_json"),
        ('{"temp":Infinity}', "bad_json"),
        ('{"temp":1e400}', "bad_json"),
        ('{"n":' + "1" * 5000 + "}", "bad_json"),
        ('{"a":' + "[" * 20_000 + "]" * 20_000 + "}", "bad_json"),
        (b'{"sn":"\xff"}', "bad_json"),
        (12, "bad_json"),
        ("{" + " " * LIMIT + "}", "too_large"),
        (b"{" + b" " * LIMIT + b"}", "too_large"),
        ('{"sn":"' + "é" * (LIMIT // 2) + '"}', "too_large"),
    ],
)
def test_loads_lenient_errors(data, code):
    assert code_of(loads_lenient, data, LIMIT) == code


# ---------------------------------------------------------------------------------------------
# cloudtime


def test_format_cloudtime():
    now = datetime(2026, 6, 12, 10, 0, 0, 987654, tzinfo=timezone.utc)
    berlin = ZoneInfo("Europe/Berlin")
    assert format_cloudtime(now) == "2026-06-12T10:00:00Z"
    assert format_cloudtime(now, "iso", berlin) == "2026-06-12T10:00:00Z"
    assert format_cloudtime(now, "local", berlin) == "2026-06-12 12:00:00"
    assert format_cloudtime(now.astimezone(berlin), "iso") == "2026-06-12T10:00:00Z"
    with pytest.raises(ValueError):
        format_cloudtime(datetime(2026, 6, 12, 10, 0), "iso")
    with pytest.raises(ValueError):
        format_cloudtime(now, "local")
    with pytest.raises(ValueError):
        format_cloudtime(now, "epoch", berlin)


# ---------------------------------------------------------------------------------------------
# Commands to the terminal


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("getuserlist", {"stn": True}, '{"cmd":"getuserlist","stn":true}'),
        ("getuserinfo", {"backupnum": 0, "enrollid": 1}, '{"cmd":"getuserinfo","enrollid":1,"backupnum":0}'),
        (
            "setuserinfo",
            {"enrollid": 1, "name": "chingzou", "backupnum": 0, "admin": 0, "record": "aabbccdd"},
            '{"cmd":"setuserinfo","enrollid":1,"name":"chingzou","backupnum":0,"admin":0,"record":"aabbccdd"}',
        ),
        (
            "setuserinfo",
            {"enrollid": "2", "name": "Zoë", "backupnum": 10, "admin": 1, "record": "12345678"},
            '{"cmd":"setuserinfo","enrollid":2,"name":"Zoë","backupnum":10,"admin":1,"record":12345678}',
        ),
        (
            "setuserinfo",
            {"enrollid": 3, "name": "", "backupnum": 11, "admin": 2, "record": 2352253},
            '{"cmd":"setuserinfo","enrollid":3,"name":"","backupnum":11,"admin":2,"record":2352253}',
        ),
        ("deleteuser", {"enrollid": 1, "backupnum": 13}, '{"cmd":"deleteuser","enrollid":1,"backupnum":13}'),
        ("getnewlog", {"stn": False}, '{"cmd":"getnewlog","stn":false}'),
        ("getalllog", {"stn": True}, '{"cmd":"getalllog","stn":true}'),
        (
            "getalllog",
            {"to": "2018-12-30", "from": "2018-11-1", "stn": True},
            '{"cmd":"getalllog","stn":true,"from":"2018-11-1","to":"2018-12-30"}',
        ),
        ("cleanlog", None, '{"cmd":"cleanlog"}'),
        ("settime", {"cloudtime": "2026-06-12 12:00:00"}, '{"cmd":"settime","cloudtime":"2026-06-12 12:00:00"}'),
        ("gettime", {}, '{"cmd":"gettime"}'),
        ("opendoor", {}, '{"cmd":"opendoor"}'),
        ("opendoor", {"doornum": 2}, '{"cmd":"opendoor","doornum":2}'),
        ("reboot", {}, '{"cmd":"reboot"}'),
        ("getdevinfo", {}, '{"cmd":"getdevinfo"}'),
        ("enableuser", {"enrollid": 1, "enflag": 0}, '{"cmd":"enableuser","enrollid":1,"enflag":0}'),
        # The other firmware dialect's names, sent as given.
        ("settime", {"time": "2026-06-12 12:00:00"}, '{"cmd":"settime","time":"2026-06-12 12:00:00"}'),
        ("enableuser", {"enrollid": 1, "enable": 1}, '{"cmd":"enableuser","enrollid":1,"enable":1}'),
        ("setuserinfo", {"enrollid": 2, "name": "p", "backupnum": 40, "admin": 0, "record": "cGFsbQ=="},
         '{"cmd":"setuserinfo","enrollid":2,"name":"p","backupnum":40,"admin":0,"record":"cGFsbQ=="}'),
        ("getuserinfo", {"enrollid": 2, "backupnum": 51}, '{"cmd":"getuserinfo","enrollid":2,"backupnum":51}'),
        ("deleteuser", {"enrollid": 2, "backupnum": 41}, '{"cmd":"deleteuser","enrollid":2,"backupnum":41}'),
    ],
)
def test_encode_command(name, params, expected):
    assert encode_command(name, params) == expected


def test_command_table():
    assert set(COMMANDS) == {
        "getuserlist", "getuserinfo", "setuserinfo", "deleteuser", "getnewlog", "getalllog", "cleanlog",
        "settime", "gettime", "opendoor", "reboot", "getdevinfo", "enableuser",
        "getusername", "setusername", "cleanuser", "initsys", "cleanadmin", "setdevinfo", "setdevlock",
        "getdevlock", "getuserlock", "setuserlock", "deleteuserlock", "cleanuserlock", "getholiday",
        "setholiday", "getquestionnaire", "setquestionnaire", "raw",
    }
    assert [name for name, spec in COMMANDS.items() if not spec.expects_reply] == ["reboot"]
    assert {name for name, spec in COMMANDS.items() if spec.paged} == {"getuserlist", "getnewlog", "getalllog"}
    assert [name for name, spec in COMMANDS.items() if spec.params.get("enrollid")] == [
        "getuserinfo", "setuserinfo", "deleteuser", "enableuser", "getusername", "getuserlock", "deleteuserlock"]
    assert DESTRUCTIVE == {"cleanlog", "cleanuser", "initsys", "cleanadmin", "cleanuserlock"}
    assert not set(COMMANDS) & set(REQUESTS)


def test_code_tables():
    assert [n for n, meaning in BACKUPNUM.items() if meaning.startswith("fingerprint")] == list(range(10))
    assert (BACKUPNUM[10], BACKUPNUM[11], BACKUPNUM[50]) == ("password", "card", "photo")
    assert [n for n, meaning in BACKUPNUM.items() if meaning.startswith("face")] == [*range(20, 28), 51]
    assert [n for n, meaning in BACKUPNUM.items() if meaning.startswith("palm")] == [*range(30, 38), 40, 41]
    assert ADMIN == {0: "user", 1: "admin", 2: "super user"}
    assert INOUT == {0: "in", 1: "out"}


@pytest.mark.parametrize(
    ("name", "params", "code"),
    [
        ("format", {}, "unknown_cmd"),
        ("getuserlist", {}, "missing_field"),
        ("getuserlist", {"stn": None}, "missing_field"),
        ("getuserlist", {"stn": 1}, "invalid"),
        ("getuserlist", {"stn": True, "page": 2}, "invalid"),
        ("getuserlist", [("stn", True)], "invalid"),
        ("getuserinfo", {"enrollid": 1}, "missing_field"),
        ("getuserinfo", {"enrollid": 0, "backupnum": 0}, "invalid"),
        ("getuserinfo", {"enrollid": 1, "backupnum": 12}, "invalid"),
        ("getuserinfo", {"enrollid": 1, "backupnum": "finger"}, "invalid"),
        ("deleteuser", {"enrollid": 1, "backupnum": 14}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "name": "n", "backupnum": 0, "admin": 3, "record": "x"}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "name": "n", "backupnum": 10, "admin": 0, "record": 123456789}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "name": "n", "backupnum": 10, "admin": 0, "record": "12ab"}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "name": "n", "backupnum": 11, "admin": 0, "record": -5}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "name": "n", "backupnum": 0, "admin": 0, "record": 1234}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "name": "n", "backupnum": 0, "admin": 0, "record": ""}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "name": "n", "backupnum": 50, "admin": 0, "record": [1]}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "name": "n" * 65, "backupnum": 0, "admin": 0, "record": "x"}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "name": "a\nb", "backupnum": 0, "admin": 0, "record": "x"}, "invalid"),
        ("setuserinfo", {"enrollid": 1, "backupnum": 0, "admin": 0, "record": "x"}, "missing_field"),
        ("settime", {"cloudtime": "2026-06-12T12:00:00Z"}, "invalid"),
        ("settime", {"cloudtime": "2026-02-30 12:00:00"}, "invalid"),
        ("getalllog", {"stn": True, "from": "2018-12-30", "to": "2018-11-1"}, "invalid"),
        ("getalllog", {"stn": True, "from": "2018-11-31"}, "invalid"),
        ("getalllog", {"stn": True, "to": "last week"}, "invalid"),
        ("opendoor", {"doornum": 5}, "invalid"),
        ("opendoor", {"doornum": 0}, "invalid"),
        ("enableuser", {"enrollid": 1, "enflag": 2}, "invalid"),
        ("enableuser", {"enrollid": 1}, "missing_field"),
        ("enableuser", {"enrollid": 1, "enflag": 1, "enable": 1}, "invalid"),
        ("settime", {}, "missing_field"),
        ("settime", {"cloudtime": "2026-06-12 12:00:00", "time": "2026-06-12 12:00:00"}, "invalid"),
        ("settime", {"time": "noon"}, "invalid"),
        ("getuserinfo", {"enrollid": 1, "backupnum": 42}, "invalid"),
        ("reboot", {"delay": 5}, "invalid"),
    ],
)
def test_encode_command_validation(name, params, code):
    assert code_of(encode_command, name, params) == code


def test_encode_command_messages():
    with pytest.raises(ProtocolError, match=r"getuserlist does not take 'page' \(parameters: stn\)"):
        encode_command("getuserlist", {"stn": True, "page": 2})
    with pytest.raises(ProtocolError, match=r"setuserinfo.record \(password\) must be between 0 and 99999999"):
        encode_command("setuserinfo", {"enrollid": 1, "name": "n", "backupnum": 10, "admin": 0, "record": 10**9})


# ---------------------------------------------------------------------------------------------
# Replies from the terminal


def test_decode_reply():
    reply = decode_reply(loads_lenient(
        '{"ret":"getuserlist","sn":"zx12345678","result":true,"count":40,"from":0,"to":39,'
        '"record":[{"enrollid":1,"admin":0,"backupnum":0}]}', LIMIT))
    assert reply == TerminalReply("getuserlist", True, {
        "sn": "zx12345678", "count": 40, "from": 0, "to": 39, "record": [{"enrollid": 1, "admin": 0, "backupnum": 0}]})


@pytest.mark.parametrize(
    ("obj", "name", "result"),
    [
        ({"cmd": "getuserinfo", "result": True}, "getuserinfo", True),  # firmware quirk: cmd for ret
        ({"ret": " GetUserInfo ", "result": False, "reason": 1}, "getuserinfo", False),
        ({"ret": "opendoor", "result": "true"}, "opendoor", True),
        ({"ret": "opendoor", "result": "FALSE"}, "opendoor", False),
        ({"ret": "opendoor", "result": 1}, "opendoor", True),
        ({"ret": "gettime", "sn": "zx1", "time": "2022-11-09 19:31:49"}, "gettime", True),
        ({"ret": "settime", "reason": "busy"}, "settime", False),
    ],
)
def test_decode_reply_quirks(obj, name, result):
    reply = decode_reply(obj)
    assert (reply.name, reply.result) == (name, result)
    assert "ret" not in reply.fields and "cmd" not in reply.fields and "result" not in reply.fields


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ({"result": True}, "missing_field"),
        ({"ret": "reg", "result": True}, "unknown_cmd"),
        ({"ret": "selfdestruct", "result": True}, "unknown_cmd"),
        ({"ret": 5, "result": True}, "invalid"),
        ({"ret": "opendoor", "result": "maybe"}, "invalid"),
        ({"ret": "opendoor", "result": 2}, "invalid"),
        ("opendoor", "invalid"),
    ],
)
def test_decode_reply_errors(obj, code):
    assert code_of(decode_reply, obj) == code


def test_is_reply():
    assert is_reply({"ret": "getuserlist"})
    assert is_reply({"cmd": "getnewlog", "result": True})
    assert is_reply({"cmd": " GetNewLog "})
    assert not is_reply({"cmd": "reg", "sn": "S"})
    assert not is_reply({"cmd": "sendlog", "sn": "S", "record": []})


def page(name, **fields):
    return TerminalReply(name, True, {"record": [{"enrollid": 1}], **fields})


@pytest.mark.parametrize(
    ("reply", "page_count", "done"),
    [
        (page("getnewlog", count=1000, to=49), 1, False),
        (page("getnewlog", count=1000, to=998), 20, True),
        (page("getnewlog", count=1000, to=999), 20, True),
        (page("getnewlog", count="1000", to="49"), 1, False),
        (page("getnewlog", count=0), 1, True),
        (TerminalReply("getnewlog", True, {"count": 0, "from": 0, "to": 0, "record": []}), 1, True),
        (TerminalReply("getnewlog", True, {"count": 5}), 1, True),
        (TerminalReply("getnewlog", False, {"reason": 1}), 1, True),
        (page("getnewlog", count=1000, to=49), 10, True),  # cap reached
        (page("getalllog", count=50, to=49), 1, True),
        (page("getalllog"), 1, False),
        (page("getnewlog", count="lots", to=49), 1, True),
        (page("getnewlog", count=1000, to=None), 1, True),
        (TerminalReply("getnewlog", True, {"record": "none"}), 1, True),
        # getuserlist's count is the page's own size: keep going until an empty page
        (page("getuserlist", count=40, to=39), 1, False),
        (TerminalReply("getuserlist", True, {"count": 0, "from": 0, "to": 0, "record": []}), 2, True),
    ],
)
def test_page_done(reply, page_count, done):
    assert page_done(reply, page_count, cap=10) is done


def test_punches_in_reply():
    reply = decode_reply({"ret": "getnewlog", "result": True, "count": 2, "from": 0, "to": 1, "record": [
        {"enrollid": 1, "time": "2016-03-25 13:49:30", "mode": 0, "inout": 0, "event": 0},
        {"enrollid": 0, "time": "2016-03-25 13:49:31", "mode": 0, "inout": 1, "event": 1}]})
    assert [(p.enrollid, p.inout, p.event) for p in punches_in_reply(reply)] == [(1, 0, 0), (0, 1, 1)]
    assert punches_in_reply(TerminalReply("getnewlog", True, {})) == []
    assert code_of(punches_in_reply, TerminalReply("getnewlog", True, {"record": {}})) == "invalid"


# ---------------------------------------------------------------------------------------------
# Properties: nothing but ProtocolError escapes

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
fields = st.sampled_from(
    ["cmd", "ret", "result", "sn", "cpusn", "devinfo", "count", "logindex", "record", "time", "enrollid", "mode",
     "inout", "event", "temp", "verifymode", "image", "modelname", "usersize", "to", "from", "reason"]
)
names = st.sampled_from([*REQUESTS, *COMMANDS, "x"])
record_like = st.dictionaries(fields, json_values | st.sampled_from(["2026-06-12 09:15:30", "3650", "1"]), max_size=8)


@st.composite
def message_like(draw):
    obj = draw(st.dictionaries(fields, json_values, max_size=6))
    obj[draw(st.sampled_from(["cmd", "ret"]))] = draw(names)
    obj["sn"] = draw(st.sampled_from(["ZX1", "", 5, None]))
    if draw(st.booleans()):
        obj["record"] = draw(st.lists(record_like, max_size=3))
    return obj


def only_protocol_errors(call, *args):
    try:
        call(*args)
    except ProtocolError as exc:
        assert isinstance(exc.code, str) and exc.message


@FAST
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_loads_lenient_arbitrary_input(data):
    only_protocol_errors(loads_lenient, data, 150)


@FAST
@given(json_values | message_like())
def test_request_pipeline_arbitrary_json(value):
    try:
        obj = loads_lenient(json.dumps(value) + ",", LIMIT)
    except ProtocolError:
        return
    only_protocol_errors(decode_request, obj)
    only_protocol_errors(decode_reply, obj)


@FAST
@given(json_values | message_like())
def test_decoders_arbitrary_objects(obj):
    only_protocol_errors(decode_request, obj)
    only_protocol_errors(parse_punch, obj)
    try:
        reply = decode_reply(obj)
    except ProtocolError:
        return
    only_protocol_errors(punches_in_reply, reply)
    assert page_done(reply, 1, 5) in (True, False)


@FAST
@given(names, st.dictionaries(fields | st.sampled_from(["stn", "backupnum", "admin", "name", "cloudtime",
                                                        "doornum", "enflag"]), json_values, max_size=5))
def test_encode_command_arbitrary_params(name, params):
    only_protocol_errors(encode_command, name, params)

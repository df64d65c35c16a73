"""The cmd/ret commands for user names, device and access parameters, holidays, the questionnaire,
the destructive ones and `raw`: what is sent for valid parameters (the vendor text's examples) and
which field a refusal names."""

from __future__ import annotations

import json

import pytest

from gatewayd.connectors.terminals.command_codec import decode_reply, encode_command, is_reply, reply_name
from gatewayd.connectors.terminals.command_params import MAX_RAW_BYTES
from gatewayd.errors import ProtocolError

DAYZONE = [{"day": [{"section": "06:00~07:00"}, {"section": "08:30~12:00"}, {"section": "13:00~17:00"},
                    {"section": "18:00~21:00"}, {"section": "22:00~23:30"}]},
           {"day": [{"section": "00:01~23:59"}]}]
WEEKZONE = [{"week": [{"day": 1}] * 5 + [{"day": 2}] * 2}]
SCHEDULES = ["00:01-11:12*1", "11:30-12:30*3", "13:00-19:00*4"] + ["00:00-00:00*0"] * 5


def sent(name: str, params: dict | None = None) -> dict:
    return json.loads(encode_command(name, params))


@pytest.mark.parametrize("name, params, expected", [
    ("getusername", {"enrollid": "1"}, {"cmd": "getusername", "enrollid": 1}),
    ("setusername", {"record": [{"enrollid": 1, "name": "chingzou"}, {"enrollid": 2, "name": "张伟"}]},
     {"cmd": "setusername", "count": 2, "record": [{"enrollid": 1, "name": "chingzou"}, {"enrollid": 2, "name": "张伟"}]}),
    ("cleanuser", {}, {"cmd": "cleanuser"}),
    ("initsys", None, {"cmd": "initsys"}),
    ("cleanadmin", {}, {"cmd": "cleanadmin"}),
    ("setdevinfo", {"volume": 8, "sleep": True}, {"cmd": "setdevinfo", "volume": 8, "sleep": True}),
    ("setdevinfo", {"deviceid": 1, "language": 0, "volume": 6, "screensaver": 0, "verifymode": 0, "sleep": 0,
                    "userfpnum": 3, "loghint": 1000, "reverifytime": 0},
     {"cmd": "setdevinfo", "deviceid": 1, "language": 0, "volume": 6, "screensaver": 0, "verifymode": 0,
      "sleep": 0, "userfpnum": 3, "loghint": 1000, "reverifytime": 0}),
    ("setdevlock", {"opendelay": 5, "InputAlarm": 1, "dayzone": DAYZONE, "weekzone": WEEKZONE,
                    "lockgroup": [{"group": 1234}, {"group": 15}], "nopentime": [{"day": 0}] * 7},
     {"cmd": "setdevlock", "opendelay": 5, "InputAlarm": 1, "dayzone": DAYZONE, "weekzone": WEEKZONE,
      "lockgroup": [{"group": 1234}, {"group": 15}], "nopentime": [{"day": 0}] * 7}),
    ("getdevlock", {}, {"cmd": "getdevlock"}),
    ("getuserlock", {"enrollid": 2}, {"cmd": "getuserlock", "enrollid": 2}),
    ("setuserlock", {"count": 2, "record": [
        {"enrollid": 1, "weekzone": 1, "weekzone2": 1, "weekzone3": 1, "weekzone4": 1, "group": 1,
         "starttime": "2016-03-25 01:00:00", "endtime": "2099-03-25 23:59:00"},
        {"enrollid": 3, "group": 1}]},
     {"cmd": "setuserlock", "count": 2, "record": [
         {"enrollid": 1, "weekzone": 1, "weekzone2": 1, "weekzone3": 1, "weekzone4": 1, "group": 1,
          "starttime": "2016-03-25 01:00:00", "endtime": "2099-03-25 23:59:00"}, {"enrollid": 3, "group": 1}]}),
    ("deleteuserlock", {"enrollid": 1}, {"cmd": "deleteuserlock", "enrollid": 1}),
    ("cleanuserlock", {}, {"cmd": "cleanuserlock"}),
    ("getholiday", {}, {"cmd": "getholiday", "stn": True}),
    ("setholiday", {"holidays": [{"name": "holiday1", "startday": "01-01", "endday": "01-01", "shift": 0,
                                  "dayzone": 0}, {"name": "leap", "startday": "02-29", "endday": "03-01"}]},
     {"cmd": "setholiday", "holidays": [{"name": "holiday1", "startday": "01-01", "endday": "01-01", "shift": 0,
                                         "dayzone": 0}, {"name": "leap", "startday": "02-29", "endday": "03-01"}]}),
    ("setholiday", {"holidays": []}, {"cmd": "setholiday", "holidays": []}),
    ("getquestionnaire", {}, {"cmd": "getquestionnaire", "stn": True}),
    ("setquestionnaire", {"title": "inout event", "voice": "please select", "errmsg": "please select",
                          "radio": True, "optionflag": 0, "usequestion": True, "useschedule": True, "card": 0,
                          "items": ["in", "out", "onduty", "offduty"], "schedules": SCHEDULES},
     {"cmd": "setquestionnaire", "title": "inout event", "voice": "please select", "errmsg": "please select",
      "radio": True, "optionflag": 0, "usequestion": True, "useschedule": True, "card": 0,
      "items": ["in", "out", "onduty", "offduty"], "schedules": SCHEDULES}),
    ("raw", {"cmd": "setlogo", "image": "aGk=", "n": [1, {"a": None}]},
     {"cmd": "setlogo", "image": "aGk=", "n": [1, {"a": None}]}),
])
def test_valid_parameters_are_sent_as_the_vendor_writes_them(name, params, expected):
    assert sent(name, params) == expected


@pytest.mark.parametrize("name, params, words", [
    ("getusername", {}, "getusername needs 'enrollid'"),
    ("setusername", {"record": []}, "setusername.record must have 1 to 50 entries"),
    ("setusername", {"record": [{"enrollid": 1, "name": "a"}] * 51}, "1 to 50 entries"),
    ("setusername", {"count": 3, "record": [{"enrollid": 1, "name": "a"}]}, "count is 3 but record has 1"),
    ("setusername", {"record": [{"enrollid": 1}]}, "setusername.record[0] needs 'name'"),
    ("setusername", {"record": [{"enrollid": 1, "name": "a\nb"}]}, "setusername.record[0].name contains control"),
    ("setusername", {"record": [{"enrollid": 1, "name": "a", "pin": 4}]}, "does not take 'pin'"),
    ("cleanuser", {"all": True}, "cleanuser does not take 'all'"),
    ("setdevinfo", {}, "setdevinfo needs at least one setting"),
    ("setdevinfo", {"volume": 11}, "setdevinfo.volume must be between 0 and 10"),
    ("setdevinfo", {"sleep": 2}, "setdevinfo.sleep must be true/false or 0/1"),
    ("setdevinfo", {"userfpnum": 0}, "setdevinfo.userfpnum must be between 1 and 10"),
    ("setdevlock", {"doorsensor": 3}, "setdevlock.doorsensor must be between 0 and 2"),
    ("setdevlock", {"dayzone": [{"day": [{"section": "25:00~26:00"}]}]}, "dayzone[0].day[0].section must look like"),
    ("setdevlock", {"dayzone": [{"day": []}]}, "setdevlock.dayzone[0].day must have 1 to 5 entries"),
    ("setdevlock", {"weekzone": [{"week": [{"day": 1}] * 8}]}, "week must have 1 to 7 entries"),
    ("setdevlock", {"weekzone": [{"week": [{"day": 9}]}]}, "weekzone[0].week[0].day must be between 0 and 8"),
    ("setdevlock", {"lockgroup": [{"group": 1}] * 6}, "lockgroup must have 1 to 5 entries"),
    ("setdevlock", {"inputalarm": 1}, "does not take 'inputalarm'"),
    ("getuserlock", {"enrollid": 0}, "getuserlock.enrollid must be between 1"),
    ("setuserlock", {"record": [{"enrollid": 1}]}, "setuserlock.record[0] needs at least one of"),
    ("setuserlock", {"record": [{"enrollid": 1, "group": 10}]}, "record[0].group must be between 0 and 9"),
    ("setuserlock", {"record": [{"enrollid": 1, "starttime": "2099-01-01 00:00:00",
                                 "endtime": "2016-01-01 00:00:00"}]}, "record[0].starttime is after its endtime"),
    ("setuserlock", {"record": [{"enrollid": 1, "endtime": "2099-01-01"}]}, "record[0].endtime must look like"),
    ("setuserlock", {"record": [{"enrollid": 1, "group": 1}] * 41}, "1 to 40 entries"),
    ("deleteuserlock", {}, "deleteuserlock needs 'enrollid'"),
    ("getholiday", {"stn": False}, "getholiday does not take 'stn'"),
    ("setholiday", {}, "setholiday needs 'holidays'"),
    ("setholiday", {"holidays": [{"name": "x", "startday": "02-30", "endday": "03-01"}]}, "startday must be a day"),
    ("setholiday", {"holidays": [{"name": "x", "startday": "1-1", "endday": "01-01"}]}, "startday must be a day"),
    ("setholiday", {"holidays": [{"name": "x", "startday": "01-01", "endday": "01-01"}] * 31}, "0 to 30 entries"),
    ("setquestionnaire", {}, "setquestionnaire needs at least one setting"),
    ("setquestionnaire", {"radio": 1}, "setquestionnaire.radio must be true or false"),
    ("setquestionnaire", {"schedules": ["00:01-11:12*17"]}, "schedules[0] must look like"),
    ("setquestionnaire", {"radio": False, "items": ["x"] * 9}, "at most 8 for multiple choice"),
    ("setquestionnaire", {"items": ["x"] * 17}, "items must have 0 to 16 entries"),
    ("raw", {}, "raw needs 'cmd'"),
    ("raw", {"cmd": "Set Logo"}, "raw.cmd must be a lower-case command name"),
    ("raw", {"cmd": "opendoor"}, "is a command gatewayd knows"),
    ("raw", {"cmd": "setlogo", "image": "x" * MAX_RAW_BYTES}, f"the limit is {MAX_RAW_BYTES}"),
])
def test_refusals_name_the_field(name, params, words):
    with pytest.raises(ProtocolError) as caught:
        encode_command(name, params)
    assert words in caught.value.message


def test_replies_of_the_new_commands_and_of_a_raw_frame():
    assert decode_reply({"ret": "getusername", "result": True, "record": "chingzou"}).fields == {"record": "chingzou"}
    lock = decode_reply({"ret": "getuserlock", "result": True, "enrollid": 1, "weekzone": 1, "group": 1})
    assert lock.name == "getuserlock" and lock.fields["weekzone"] == 1
    assert reply_name("raw", {"cmd": "setlogo"}) == "setlogo" and reply_name("getdevlock", {}) == "getdevlock"
    with pytest.raises(ProtocolError):
        decode_reply({"ret": "setlogo", "result": True})  # nobody waits for it
    assert decode_reply({"ret": "setlogo", "result": False, "reason": 1}, "setlogo").result is False
    assert not is_reply({"cmd": "setlogo"}) and is_reply({"cmd": "setlogo"}, "setlogo")

"""Whatever a client posts to /api/device-http: a precise answer, never a crash, never a partial store."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings, strategies as st

from gatewayd import ops
from gatewayd.gateway import open_core

from ..conftest import make_settings

SN = "HYP1"

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                     st.text(max_size=12), st.sampled_from(["2026-06-12 09:00:00", "2026-6-1T7:05:09", " 3650 ",
                                                            "2026-02-30 00:00:00", "1e3", "-1"]))
_record = st.fixed_dictionaries({}, optional={
    "enrollid": _scalars, "time": _scalars, "mode": _scalars, "inout": _scalars, "event": _scalars,
    "temp": _scalars, "verifymode": _scalars, " image": _scalars})
_valid_record = st.fixed_dictionaries(
    {"enrollid": st.integers(0, 20), "time": st.sampled_from(["2026-06-12 09:00:00", "2026-06-12T09:00:00",
                                                               "2026-06-12 09:00:01", "2000-01-01 00:00:00"])},
    optional={"mode": st.integers(0, 30), "inout": st.integers(0, 1), "event": st.integers(0, 5),
              "temp": st.one_of(st.floats(30, 45), st.integers(3000, 4500))})
_sendlog = st.fixed_dictionaries(
    {"cmd": st.sampled_from(["sendlog", " SendLog "]), "sn": st.sampled_from([SN, f" {SN} "]),
     "record": st.lists(st.one_of(_valid_record, _valid_record, _valid_record, _record), max_size=5)},
    optional={"count": st.one_of(st.integers(0, 10), _scalars), "logindex": st.one_of(st.integers(0, 99), _scalars)})
_request = st.fixed_dictionaries({}, optional={
    "cmd": st.one_of(st.sampled_from(["reg", "sendlog", "checklive", " SendLog ", "getuserlist"]), _scalars),
    "sn": st.one_of(st.sampled_from([SN, f" {SN} ", "PENDING9"]), _scalars),
    "count": _scalars, "logindex": _scalars,
    "record": st.one_of(st.lists(_record, max_size=4), _scalars),
    "devinfo": st.one_of(st.dictionaries(st.text(max_size=8), _scalars, max_size=3), _scalars)})


def _encode(obj: dict, trailing: bool) -> tuple[bytes, dict | None]:
    text = json.dumps(obj)
    return (text[:-1] + ",}" if trailing and len(obj) else text).encode(), obj


_bodies = st.one_of(
    st.builds(_encode, st.one_of(_sendlog, _request), st.booleans()),
    st.builds(_encode, _sendlog, st.booleans()),
    st.binary(max_size=64).map(lambda b: (b, None)),
    st.text(max_size=64).map(lambda t: (t.encode(), None)),
)


async def _count(core) -> int:
    await core.history.wait_applied()
    return sum(1 for _ in core.service("attendance").select())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(_bodies, min_size=1, max_size=4))
async def test_any_body_gets_a_precise_answer(bodies):
    with tempfile.TemporaryDirectory() as tmp:
        async with open_core(make_settings(Path(tmp) / "state"), online=True) as core:
            await ops.call(core, "terminal.add", {"sn": SN})
            terminals = core.service("terminals")
            outcomes = []
            for body, obj in bodies:
                before = await _count(core)
                status, text = await terminals.handle_http(body, "fuzz")
                reply = json.loads(text)
                assert status in (200, 400) and isinstance(reply, dict) and isinstance(reply["result"], bool)
                if status == 400:
                    assert reply["code"] in ("bad_json", "missing_field", "unknown_cmd", "invalid") and reply["message"]
                else:
                    assert reply["ret"] in ("reg", "sendlog", "checklive", "sendqrcode") or \
                        reply["reason"].startswith("unknown_cmd: ")
                    assert reply["result"] or reply["reason"]
                stored_now = await _count(core) - before
                if obj is not None and reply.get("ret") == "sendlog" and obj["sn"].strip() == SN:
                    outcomes.append(reply["result"])
                    if reply["result"]:
                        assert stored_now <= len(obj["record"]) and "count" in reply
                    else:
                        assert stored_now == 0, "a refused batch stored something"
            event("accepted sendlog" if True in outcomes else "refused sendlog" if outcomes else "other")


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=40), st.dates().map(str), st.datetimes().map(str),
                      st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())),
       zone=st.sampled_from(["UTC", "Asia/Tokyo", "America/Adak", "Pacific/Kiritimati"]), end=st.booleans())
def test_time_bounds_parse_or_refuse_precisely(text, zone, end):
    from zoneinfo import ZoneInfo

    from gatewayd.ops import OpError
    from gatewayd.connectors.terminals.attendance import parse_bound

    try:
        value, inclusive = parse_bound(text, ZoneInfo(zone), end=end, where="from")
    except OpError as exc:
        assert exc.status == 422 and "from" in exc.message
    else:
        assert value is None or isinstance(value, float)
        assert isinstance(inclusive, bool)

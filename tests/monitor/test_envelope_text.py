"""The live stream's fast envelopes (Comms.envelopes) give the comm mappers' text to the byte."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings, strategies as st

from gatewayd.connectors.devices.comms import COMMS as DEVICE_COMMS
from gatewayd.connectors.monitor import resiot
from gatewayd.connectors.monitor.resiot import encode_envelope, format_dt, parse_filter, record_dt_text
from gatewayd.connectors.monitor.streams import stream_kinds
from gatewayd.gateway import comm_tables
from gatewayd.journal.record import Record, parse_ts

ZONES = [timezone.utc, ZoneInfo("Europe/Rome"), ZoneInfo("America/St_Johns"), ZoneInfo("Asia/Kathmandu"),
         ZoneInfo("Africa/Monrovia"),  # -0:44:30 until 1972: an offset with seconds
         ZoneInfo("Australia/Lord_Howe"), timezone(timedelta(hours=-3, minutes=-30))]

floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e-4, 9.999e-5, 1e16, 9999999999999998.0, 1e22, 0.1]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70), floats,
                    st.text(max_size=8), st.sampled_from(["\ud800", "\x7f", "\u2028", "é", "\x00\x1f\"\\"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                      max_leaves=12)
keys = st.one_of(st.text(max_size=6), st.sampled_from(["type", "event", "msg_id", "device_ts", "dialect"]))
payloads = st.one_of(st.dictionaries(keys, values, max_size=40), values,
                     st.dictionaries(st.integers(0, 3), scalars, max_size=2))
times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc))
record_times = st.one_of(times.map(lambda t: t.isoformat(timespec="microseconds").replace("+00:00", "Z")),
                         times.map(datetime.isoformat))
device_ids = st.one_of(st.text(min_size=1, max_size=20), st.sampled_from(["70B3D57E00000001", "70b3d57e00000001"]))
optional = st.one_of(st.none(), scalars)


@st.composite
def device_records(draw) -> Record:
    record_type = draw(st.sampled_from(["device.telemetry", "device.event"]))
    data = {"device_id": draw(device_ids), "name": "n", "payload": draw(payloads)}
    connector = draw(st.sampled_from([None, "absent", "absent", "ws", "ws", "ws", "lorawan", ""]))
    if connector != "absent":
        data["connector"] = connector
    for key in ("msg_id", "device_ts", "dialect"):
        value = draw(optional)
        if value is not None or draw(st.booleans()):
            data[key] = value
    if record_type == "device.event" and draw(st.integers(0, 9)):
        data["event"] = draw(optional)
    if draw(st.integers(0, 19)) == 0:
        del data["payload"]
    return Record(draw(st.integers(1, 2 ** 40)), draw(record_times), record_type, data)


def _reference(mappers, record, zone):
    try:
        return [((c.comm_type, c.connector, c.dev_eui, c.seq), encode_envelope(c, zone)) for c in mappers(record)]
    except Exception:
        return "fails"


def _fast(envelopes, record, zone):
    try:
        return [((h.comm_type, h.connector, h.dev_eui, h.seq), encode(record, zone)) for h, encode in envelopes(record)]
    except Exception:
        return "fails"


@settings(max_examples=600, deadline=None)
@given(device_records(), st.sampled_from(ZONES))
@example(Record(7, "2026-06-12T09:15:30.123456Z", "device.telemetry",
                {"device_id": "70B3D57E00000001", "connector": "ws", "payload": {"t": 1e16, "x": [1.5e-7]},
                 "msg_id": 3, "dialect": "json"}), ZoneInfo("Europe/Rome"))
def test_fast_envelopes_are_the_mappers_envelopes(record, zone):
    for record_type, envelopes in DEVICE_COMMS.envelopes.items():
        mapper = DEVICE_COMMS.communications[record_type]
        moved = Record(record.seq, record.ts, record_type, record.data)
        assert _fast(envelopes, moved, zone) == _reference(mapper, moved, zone)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(record_times, st.sampled_from(ZONES)), min_size=1, max_size=6))
def test_record_times_read_as_format_dt_writes_them(pairs):
    for ts, zone in pairs:  # one after the other: the text kept from the last record must not leak
        try:
            expected = format_dt(parse_ts(ts), zone)
        except ValueError:
            continue
        assert record_dt_text(ts, zone) == expected


def test_a_plain_envelope_refuses_the_kinds_with_more_fields():
    for kind in (resiot.COMM_TX, resiot.COMM_GWTX, resiot.COMM_TXSENDACK):
        try:
            resiot.plain_envelope_text(kind, "ws", "d", "", "{}", "x", 1)
        except ValueError:
            continue
        raise AssertionError(kind)


def test_the_stream_uses_the_fast_form_and_filters_it_like_the_mappers_output():
    kinds = stream_kinds(comm_tables())
    stream = kinds["communications"]
    assert stream.envelopes["device.telemetry"] is DEVICE_COMMS.envelopes["device.telemetry"]
    record = Record(9, "2026-06-12T09:15:30.000001Z", "device.telemetry",
                    {"device_id": "70B3D57E0000000A", "connector": "ws", "payload": {"t": 21.5}})
    rendered = stream.render(record, ZoneInfo("Europe/Rome"))
    [comm] = DEVICE_COMMS.communications["device.telemetry"](record)
    assert [frame.text for frame in stream.select(None, rendered)] == [encode_envelope(comm, ZoneInfo("Europe/Rome"))]
    for query, selected in (({"dev": "70b3d57e0000000a"}, 1), ({"dev": "other"}, 0), ({"types": "comm_join"}, 0),
                            ({"types": "comm_rx", "connector": "7773"}, 1), ({"connector": "lorawan"}, 0)):
        assert len(stream.select(parse_filter(query), rendered)) == selected, query

"""The outbox's bookkeeping (pure): the PUBACK cursor, pacing, backoff; and topic names."""

import random

import pytest
from hypothesis import given, strategies as st

from gatewayd.config import MqttSettings
from gatewayd.connectors.mqtt.outbox import AckTracker, Pacer, RateMeter, backoff_delay
from gatewayd.broker_url import check_settings, parse_url
from gatewayd.connectors.mqtt.topics import (command_filters, escape_level, event_topic, parse_command_topic,
                                             resolve_names, unescape_level)
from gatewayd.northbound.events import NorthboundEvent


@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_the_cursor_is_the_end_of_the_contiguous_acknowledged_run(messages_per_record, rng):
    tracker = AckTracker(100)
    mids, owner = [], {}
    for offset, count in enumerate(messages_per_record):
        seq = 101 + offset
        if count == 0:
            tracker.skip(seq)
            continue
        tracker.begin(seq)
        for _ in range(count):
            mid = len(owner) + 1
            owner[mid] = seq
            mids.append(mid)
            tracker.sent(mid)
        tracker.end()
    rng.shuffle(mids)
    acked: set[int] = set()
    for mid in mids:
        tracker.acked(mid)
        acked.add(mid)
        pending = {owner[m] for m in owner if m not in acked}
        expected = min(pending) - 1 if pending else 100 + len(messages_per_record)
        assert tracker.acked_seq == expected
    assert tracker.in_flight == 0 and tracker.open_records == 0


def test_a_record_is_not_done_while_its_messages_are_still_being_sent():
    tracker = AckTracker(0)
    tracker.begin(1)
    tracker.sent(1)
    assert not tracker.acked(1) and tracker.acked_seq == 0  # its second message is not out yet
    tracker.sent(2)
    assert not tracker.end()
    assert tracker.acked(2) and tracker.acked_seq == 1
    assert not tracker.acked(99)  # a mid of an earlier connection


def test_pacing_holds_a_backlog_to_its_rate():
    pacer = Pacer(100.0, now=0.0)
    now, sent = 0.0, 0
    while now < 10.0:
        delay = pacer.delay(now)
        now += delay
        sent += 1
    assert 1000 <= sent <= 1101  # 100/s for 10 s, plus one second's burst at most
    assert Pacer(0.0, now=0.0).delay(0.0) == 0.0


def test_rate_meter_and_backoff():
    meter = RateMeter(window=10)
    for second in range(12):
        meter.sample(float(second), second * 50)
    assert meter.rate() == 50.0
    rng = random.Random(7)
    delays = [backoff_delay(attempt, 60.0, rng) for attempt in range(1, 12)]
    assert 0.5 <= delays[0] <= 1.0 and all(30.0 <= d <= 60.0 for d in delays[7:])


# -- names ---------------------------------------------------------------------------------------------
@given(st.text(max_size=40))
def test_an_id_is_always_exactly_one_topic_level(text):
    level = escape_level(text)
    assert not any(c in level for c in "/+#\x00") and unescape_level(level) == text


def test_topics_and_command_topics():
    event = NorthboundEvent("device", "a/b+#", "up", {})
    assert event_topic("gatewayd/s1", event) == "gatewayd/s1/device/a%2Fb%2B%23/event/up"
    assert command_filters("p") == ["p/device/+/command/down", "p/terminal/+/command/down"]
    assert parse_command_topic("p", "p/device/a%2Fb/command/down") == ("device", "a/b")
    assert parse_command_topic("p", "p/terminal/ZK1/command/down") == ("terminal", "ZK1")
    for topic in ("p/device/x/command/up", "p/gateway/x/command/down", "q/device/x/command/down",
                  "p/device//command/down", "p/device/x/y/command/down"):
        assert parse_command_topic("p", topic) is None


def test_urls_and_names():
    assert str(parse_url("mqtt://broker.lan")) == "mqtt://broker.lan:1883"
    assert parse_url("mqtts://10.0.0.1:9999").tls and parse_url("mqtts://h").port == 8883
    for bad in ("http://h", "mqtt://", "mqtt://u:p@h", "mqtt://h/x", "mqtt://h:99999"):
        with pytest.raises(ValueError):
            parse_url(bad)
    names = resolve_names("", "", "", "pi-7.example.org")
    assert (names.site, names.prefix, names.client_id) == ("pi-7", "gatewayd/pi-7", "gatewayd-pi-7")
    names = resolve_names("plant", "acme/{site}/gw", "id-{site}", "x")
    assert (names.prefix, names.client_id) == ("acme/plant/gw", "id-plant")


@pytest.mark.parametrize("fields, error", [
    ({"site": "a/b"}, "mqtt.site"), ({"topic_prefix": "a/+/b"}, "topic_prefix"), ({"topic_prefix": "/a"}, "prefix"),
    ({"cert_file": "c.pem"}, "key_file"), ({"ca_file": "ca.pem"}, "mqtts"),
])
def test_settings_checks(fields, error):
    settings = MqttSettings(url="mqtt://h", **fields)
    with pytest.raises(ValueError, match=error):
        check_settings(settings)

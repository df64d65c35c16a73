"""The pure parts: signatures, backoff, which seq a cursor may reach, webhook settings, alert bodies."""

from __future__ import annotations

import hashlib
import hmac
import random

import orjson
import pytest

from gatewayd import config
from gatewayd.connectors.webhooks.actions import shown_url
from gatewayd.connectors.webhooks.delivery import (RETRY_LONGEST, Pending, encode, finished_through, pending_events,
                                                   request_headers, retry_delay, signature)
from gatewayd.journal.record import Record
from gatewayd.gateway import comm_tables
from gatewayd.northbound.alerts import alert_events, has_events, record_events
from gatewayd.northbound.shared import SharedEvents


def pending(seq: int, n: int = 0) -> Pending:
    return Pending(seq, f"{seq}.{n}", "up", "2026-06-12T09:00:00.000000Z", {"seq": seq})


def test_signature_is_hmac_sha256_of_the_body():
    body = b'{"seq":1}'
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    headers = request_headers([pending(1)], body, "k", batch=False)
    assert headers["X-Gatewayd-Signature"] == signature("k", body) and headers["X-Gatewayd-Delivery"] == "1.0"
    assert "X-Gatewayd-Signature" not in request_headers([pending(1)], body, "", batch=False)
    assert request_headers([pending(1), pending(3, 1)], body, "", batch=True)["X-Gatewayd-Delivery"] == "1.0..3.1"


def test_backoff_doubles_with_jitter_and_has_a_ceiling():
    rng = random.Random(7)
    for failures in range(1, 40):
        delay = retry_delay(failures, 1.0, rng)
        ceiling = min(RETRY_LONGEST, 2.0 ** (failures - 1))
        assert ceiling / 2 <= delay <= ceiling
    delays = {round(retry_delay(3, 1.0, rng), 6) for _ in range(20)}
    assert len(delays) > 1  # jittered: endpoints recovering are not hit by every retry at once


def test_the_cursor_never_passes_an_unsent_event():
    events = [pending(5, 0), pending(5, 1), pending(8)]
    assert finished_through(1, events, 9) == 4  # 5.1 still to go: record 5 is not finished
    assert finished_through(2, events, 9) == 7
    assert finished_through(3, events, 9) == 9


@pytest.mark.parametrize("entry, fragment", [
    ({"url": "ftp://example.com"}, "webhooks[0].url: expected an http:// or https:// URL"),
    ({"url": "https://x", "events": ["up", "sideways"]}, "webhooks[0].events: unknown event 'sideways'"),
    ({"url": "https://x", "name": "Bad Name"}, "webhooks[0].name"),
    ({"url": "https://x", "headers": {"X-Gatewayd-Signature": "forged"}}, "not a header name a webhook may set"),
    ({"url": "https://x", "headers": {"X-A": "a\nb"}}, "one-line string"),
    ({"url": "https://x", "timeout": 0}, "webhooks[0].timeout: 0.0 is below the minimum"),
    ({"url": "https://x", "colour": "red"}, "unknown key webhooks[0].colour"),
])
def test_webhook_settings_errors_name_the_entry(entry, fragment):
    with pytest.raises(config.ConfigError) as excinfo:
        config.from_mapping({"webhooks": [entry]}, "<file>")
    assert fragment in str(excinfo.value)


def test_webhook_names_are_unique_and_derived_when_missing():
    settings = config.from_mapping({"webhooks": [{"url": "https://a/x"}, {"url": "https://b/x", "name": "b"}]})
    names = [config.webhook_name(w) for w in settings.webhooks]
    assert names[0].startswith("url-") and names[1] == "b"
    assert names[0] == config.webhook_name(config.WebhookSettings(url="https://a/x"))
    with pytest.raises(config.ConfigError, match="a second webhook named 'b'"):
        config.from_mapping({"webhooks": [{"url": "https://a", "name": "b"}, {"url": "https://c", "name": "b"}]})
    shown = settings.to_dict()["webhooks"][1]
    assert shown["url"] == "https://b/x"
    secret = config.from_mapping({"webhooks": [{"url": "https://a", "secret": "x", "headers": {"A": "b"}}]})
    assert secret.to_dict()["webhooks"][0]["secret"] == "***" and secret.to_dict()["webhooks"][0]["headers"] == "***"


def test_reload_of_webhooks_is_live():
    old = config.from_mapping({})
    new = config.from_mapping({"webhooks": [{"url": "https://a"}]})
    live, restart = config.reload_changes(old, new)
    assert live == ["webhooks"] and restart == []
    config.apply_reload(old, new)
    assert old.webhooks == new.webhooks


def test_alert_records_become_alert_events():
    raised = Record(7, "2026-06-12T09:00:00.000000Z", "alert.raised", {
        "id": "a1", "kind": "gateway_silent", "subject": "0102030405060708", "name": "roof",
        "since": "2026-06-12T08:58:00.000000Z", "rule": "alerts.gateway_silent_after", "threshold": 120.0,
        "details": {}})
    (event,) = alert_events(raised, site="plant-3")
    assert event.event == "alert" and event.body["event_id"] == "7.0" and event.body["site"] == "plant-3"
    assert event.body["alert"] == {"id": "a1", "kind": "gateway_silent", "state": "raised",
                                   "subject": "0102030405060708", "name": "roof",
                                   "since": "2026-06-12T08:58:00.000000Z", "rule": "alerts.gateway_silent_after",
                                   "threshold": 120.0, "details": {}}
    cleared = Record(9, "2026-06-12T09:01:00.000000Z", "alert.cleared", {
        "id": "a1", "kind": "gateway_silent", "subject": "0102030405060708", "reason": "heard again"})
    assert alert_events(cleared)[0].body["alert"]["state"] == "cleared"
    assert alert_events(Record(10, "x", "alert.acknowledged", {"id": "a1"})) == []


def test_urls_on_the_actions_stream_lose_credentials():
    assert shown_url("https://user:pw@erp.example.com:8443/hook?token=abc") == "https://erp.example.com:8443/hook"


def test_senders_share_one_rendering_and_encoding_of_each_record():
    comms = comm_tables()
    rendered: list[int] = []

    def render(record):
        rendered.append(record.seq)
        return record_events(record, comms=comms)

    shared = SharedEvents(render, lambda record_type: has_events(record_type, comms), size=6)
    records = [Record(seq, "2026-06-12T09:00:00.000000Z", "alert.raised",
                      {"id": f"a{seq}", "kind": "disk_low", "subject": "disk", "since": "x"}) for seq in range(1, 8)]
    quiet = Record(8, "2026-06-12T09:00:00.000000Z", "test.add", {"key": "a", "amount": 1})
    first = pending_events(records[:6], frozenset(["alert"]), shared)
    second = pending_events(records[:6] + [quiet], frozenset(["*"]), shared)
    assert rendered == [1, 2, 3, 4, 5, 6]  # once for both senders; a record without events not at all
    assert [p.shared for p in first] == [p.shared for p in second]
    assert encode(first[:1], batch=False) is encode(second[:1], batch=False)  # encoded once
    assert orjson.loads(encode(first[:3], batch=True)) == [p.body for p in first[:3]]
    assert encode(first[:3], batch=True) == orjson.dumps([p.body for p in first[:3]])
    assert pending_events(records[6:] + records[:1], frozenset(["up"]), shared) == []
    assert rendered == [1, 2, 3, 4, 5, 6, 7, 1]  # only the newest `size` records are kept
    assert encode([pending(5)], batch=False) == b'{"seq":5}'  # events rendered elsewhere (webhook test)

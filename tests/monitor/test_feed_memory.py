"""A feed with a large limit holds little while its sessions keep up, and still drops a session
that falls more than its limit behind."""

from gatewayd.connectors.monitor.session import TRIM_AFTER, Feed

from .test_feed import Reader, item


def test_a_large_limit_costs_memory_only_while_a_session_lags():
    feed = Feed(1_000_000)
    keeping_up = Reader(feed)
    for seq in range(1, 20 * TRIM_AFTER):
        feed.append(item(seq, [40]))
        keeping_up.cursor = feed.end
        assert len(feed.items) <= TRIM_AFTER + 1
    assert len(feed._frames) <= TRIM_AFTER + 1


def test_a_lagging_session_is_still_dropped_past_the_limit_and_trims_stay_proportionate():
    limit = 40 * TRIM_AFTER
    feed = Feed(limit)
    lagging, keeping_up = Reader(feed), Reader(feed)
    trims = 0
    trim = feed._trim

    def counted():
        nonlocal trims
        trims += 1
        trim()

    feed._trim = counted
    for seq in range(1, limit + limit // 4 + 2):
        feed.append(item(seq, [4]))
        keeping_up.cursor = feed.end
    assert lagging.dropped and not keeping_up.dropped
    for seq in range(seq + 1, seq + limit // 2):  # the rest of what the lagging session held goes
        feed.append(item(seq, [4]))
        keeping_up.cursor = feed.end
    assert len(feed.items) <= TRIM_AFTER + 1
    # While the lagging session held the feed, each trim waited a quarter of what it kept.
    assert trims <= 30

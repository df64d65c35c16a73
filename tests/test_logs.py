import io
import logging
import os
import re

import pytest

from gatewayd.logs import (
    RateLimitedLogger,
    SecretScrubber,
    level_name,
    parse_level,
    scrub_secrets,
    setup_logging,
    syslog_priority,
)


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def journal_env_for(stream) -> dict[str, str]:
    st = os.fstat(stream.fileno())
    return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


def test_journal_stream_gets_priority_prefixes(tmp_path):
    path = tmp_path / "journal.txt"
    with open(path, "w") as stream:
        setup_logging("debug", stream, environ=journal_env_for(stream))
        log = logging.getLogger("gatewayd.x")
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        log.critical("c")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")
    lines = path.read_text().splitlines()
    assert lines[:5] == [
        "<7>gatewayd.x: d",
        "<6>gatewayd.x: i",
        "<4>gatewayd.x: w",
        "<3>gatewayd.x: e",
        "<2>gatewayd.x: c",
    ]
    # Every traceback line carries the record's priority, so journald keeps them together.
    assert lines[5] == "<3>gatewayd.x: failed"
    assert lines[6] == "<3>Traceback (most recent call last):"
    assert lines[-1] == "<3>RuntimeError: boom"
    assert all(line.startswith("<3>") for line in lines[5:])


def test_journal_stream_of_another_file_means_human_format(tmp_path):
    other = open(tmp_path / "other", "w")
    with other, open(tmp_path / "log.txt", "w") as stream:
        setup_logging("info", stream, environ=journal_env_for(other))
        logging.getLogger("gatewayd.x").info("hello")
    assert not (tmp_path / "log.txt").read_text().startswith("<")


def test_human_format_without_journal():
    stream = io.StringIO()
    setup_logging("info", stream, environ={})
    logging.getLogger("gatewayd.x").info("message %d", 5)
    logging.getLogger("gatewayd.x").debug("hidden")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO gatewayd\.x: message 5\n", stream.getvalue()
    )


def test_journal_can_be_forced():
    stream = io.StringIO()
    setup_logging("WARNING", stream, journal=True, environ={})
    logging.getLogger("hypercorn.error").warning("slow")
    assert stream.getvalue() == "<4>hypercorn.error: slow\n"


def test_setup_twice_replaces_its_handler():
    first, second = io.StringIO(), io.StringIO()
    setup_logging("info", first, environ={})
    setup_logging("info", second, environ={})
    logging.getLogger("gatewayd.x").info("once")
    assert first.getvalue() == ""
    assert second.getvalue().endswith("gatewayd.x: once\n")


def test_levels():
    assert parse_level(" Debug ") == logging.DEBUG
    with pytest.raises(ValueError, match="unknown log level 'loud'; expected one of debug, info"):
        parse_level("loud")
    assert [syslog_priority(n) for n in (5, 10, 20, 25, 30, 40, 50, 60)] == [7, 7, 6, 6, 4, 3, 2, 2]
    # a child process is handed the parent's level by name: what parse_level gives back covers it
    assert [level_name(n) for n in (0, 10, 25, 30, 60)] == ["debug", "debug", "warning", "warning", "critical"]


# ---------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limited_logger(caplog):
    clock = FakeClock()
    limited = RateLimitedLogger(logging.getLogger("gatewayd.ws"), 10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="gatewayd.ws"):
        assert limited.warning("bad_json:10.0.0.1", "bad JSON from %s", "10.0.0.1")
        for _ in range(3):
            clock.now += 1
            assert not limited.warning("bad_json:10.0.0.1", "bad JSON from %s", "10.0.0.1")
        # Another key has its own budget.
        assert limited.warning("bad_json:10.0.0.2", "bad JSON from %s", "10.0.0.2")
        clock.now += 10
        assert limited.warning("bad_json:10.0.0.1", "bad JSON from %s", "10.0.0.1")
        clock.now += 5
        assert not limited.info("bad_json:10.0.0.1", "bad JSON from %s", "10.0.0.1")
        clock.now += 10
        assert limited.log("bad_json:10.0.0.1", logging.ERROR, "bad JSON again")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "bad JSON from 10.0.0.1"),
        ("WARNING", "bad JSON from 10.0.0.2"),
        ("WARNING", "bad JSON from 10.0.0.1 (3 similar messages suppressed)"),
        ("ERROR", "bad JSON again (1 similar message suppressed)"),
    ]
    assert {r.filename for r in caplog.records} == {"test_logs.py"}


def test_rate_limited_logger_bounds_its_memory(caplog):
    clock = FakeClock()
    limited = RateLimitedLogger(logging.getLogger("gatewayd.ws"), 10.0, clock=clock, max_keys=3)
    with caplog.at_level(logging.INFO, logger="gatewayd.ws"):
        for i in range(100):
            limited.info(f"peer-{i}", "hello")
        assert len(limited._last) == 3
        # peer-0 was forgotten, so it may log again at once.
        assert limited.info("peer-0", "hello")


# ---------------------------------------------------------------------------------------------


def test_scrub_secrets():
    assert scrub_secrets("token tok_AbC123-_xyz and key gwk_0123456789abcdef.") == (
        "token tok_*** and key gwk_***."
    )
    assert scrub_secrets("tok_short gwk_1234567") == "tok_short gwk_1234567"
    assert scrub_secrets("url?key=gwk_abcdefgh12&x=1") == "url?key=gwk_***&x=1"


def test_scrubber_on_the_handler_covers_args_and_tracebacks():
    stream = io.StringIO()
    setup_logging("info", stream, journal=True, environ={})
    log = logging.getLogger("gatewayd.auth")
    log.info("register %s with %s", "dev-1", "tok_supersecret123")
    try:
        raise ValueError("bad key gwk_ABCDEFGH1234")
    except ValueError:
        log.exception("auth failed for %r", {"token": "tok_zzzzzzzzzz"})
    out = stream.getvalue()
    assert "<6>gatewayd.auth: register dev-1 with tok_***\n" in out
    assert "auth failed for {'token': 'tok_***'}" in out
    assert "ValueError: bad key gwk_***" in out
    assert "supersecret" not in out and "ABCDEFGH" not in out and "zzzz" not in out


def test_scrubber_leaves_clean_records_alone():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d", (5,), None)
    assert SecretScrubber().filter(record)
    assert (record.msg, record.args) == ("n=%d", (5,))
    broken = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d", ("five",), None)
    assert SecretScrubber().filter(broken)

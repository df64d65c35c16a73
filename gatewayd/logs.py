"""Logging setup: journald-friendly lines under systemd, readable lines elsewhere.

Also two guards: a rate limiter for log lines triggered by remote input, and a filter that
scrubs anything looking like a device token or API key from every record.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections import OrderedDict
from typing import Callable, Mapping, TextIO

from .textsafe import printable

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def syslog_priority(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalFormatter(logging.Formatter):
    """Prefixes every line with <N> so journald files each line (tracebacks too) at its priority."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


_SECRET = re.compile(r"(tok|gwk)_[A-Za-z0-9_-]{8,}")


def scrub_secrets(text: str) -> str:
    return _SECRET.sub(r"\1_***", text)


class SecretScrubber(logging.Filter):
    """Last safety net: device tokens (tok_...) and API keys (gwk_...) never reach a log line, and
    control characters are shown escaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a broken format string is reported by the handler as usual
        # Names, serial numbers and reasons come from peers: no control character (a terminal escape,
        # a newline that would forge a line) reaches the log as it is.
        scrubbed = printable(scrub_secrets(message))
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = printable(scrub_secrets(record.exc_text), keep_newlines=True)
        if record.stack_info:
            record.stack_info = printable(scrub_secrets(record.stack_info), keep_newlines=True)
        return True


def _is_journal_stream(stream: TextIO, environ: Mapping[str, str]) -> bool:
    # systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected; checking it against
    # our stream tells a real journal apart from a redirect (`gatewayd serve 2>file`).
    value = environ.get("JOURNAL_STREAM")
    if not value:
        return False
    try:
        dev, inode = (int(part) for part in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, inode)


def parse_level(level: str) -> int:
    try:
        return _LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}"
        ) from None


def level_name(level: int) -> str:
    """The name parse_level takes for `level`, or for the next level above it (e.g. for NOTSET)."""
    return next((name for name, value in _LEVELS.items() if value >= level), "critical")


def setup_logging(
    level: str,
    stream: TextIO | None = None,
    *,
    journal: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Configure the root logger with one handler on `stream` (stderr by default).

    journal=None detects systemd's journal from JOURNAL_STREAM. Calling it again replaces the
    handler it installed before, so it is safe in tests and on configuration reload.
    """
    stream = sys.stderr if stream is None else stream
    env = os.environ if environ is None else environ
    use_journal = _is_journal_stream(stream, env) if journal is None else journal

    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter() if use_journal else logging.Formatter(HUMAN_FORMAT))
    # On the handler, not a logger: handler filters also see records propagated from children.
    handler.addFilter(SecretScrubber())
    handler._gatewayd = True  # type: ignore[attr-defined]

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_gatewayd", False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(parse_level(level))
    return handler


class RateLimitedLogger:
    """Logs each key at most once per `interval` seconds.

    For lines that remote peers can trigger at will (bad frames, failed logins): the first line
    of a burst is logged, the rest are counted, and the count rides along on the next line
    logged for that key. At most `max_keys` keys are remembered (least recently logged dropped
    first), so hostile keys cannot grow memory without bound.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ):
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._max_keys = max_keys
        self._last: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key -> (logged at, suppressed)

    def log(self, key: str, level: int, msg: str, *args: object, **kwargs: object) -> bool:
        """Log unless `key` was logged less than `interval` ago; True when the line was emitted."""
        now = self._clock()
        entry = self._last.get(key)
        if entry is not None and now - entry[0] < self.interval:
            self._last[key] = (entry[0], entry[1] + 1)
            return False
        suppressed = entry[1] if entry is not None else 0
        if suppressed:
            msg = f"{msg} ({suppressed} similar message{'s' if suppressed != 1 else ''} suppressed)"
        self._last[key] = (now, 0)
        self._last.move_to_end(key)
        while len(self._last) > self._max_keys:
            self._last.popitem(last=False)
        kwargs.setdefault("stacklevel", 2)  # report the caller's file and line, not ours
        self.logger.log(level, msg, *args, **kwargs)  # type: ignore[arg-type]
        return True

    def debug(self, key: str, msg: str, *args: object, **kwargs: object) -> bool:
        kwargs.setdefault("stacklevel", 3)
        return self.log(key, logging.DEBUG, msg, *args, **kwargs)

    def info(self, key: str, msg: str, *args: object, **kwargs: object) -> bool:
        kwargs.setdefault("stacklevel", 3)
        return self.log(key, logging.INFO, msg, *args, **kwargs)

    def warning(self, key: str, msg: str, *args: object, **kwargs: object) -> bool:
        kwargs.setdefault("stacklevel", 3)
        return self.log(key, logging.WARNING, msg, *args, **kwargs)

    def error(self, key: str, msg: str, *args: object, **kwargs: object) -> bool:
        kwargs.setdefault("stacklevel", 3)
        return self.log(key, logging.ERROR, msg, *args, **kwargs)

"""A pytest plugin that fails any test after which a secret shows up where it must never be.

    .venv/bin/python -m pytest tests/devices tests/terminals tests/monitor tests/lorawan \\
        -p tests.reliability.secret_scan

Secrets are learnt where gatewayd makes or checks them: every value hashed or checked as a token
or password (`gatewayd.secrets_`), every random url-safe string (`secrets.token_urlsafe`: device
tokens, API keys, the first admin password, session ids) and every plaintext sealed with the state
directory's key (LoRaWAN keys). What is searched, per test and after it ends (so a secret learnt
late still counts): every log record at any level, every WebSocket frame the server sends (device,
terminal, monitoring and dashboard streams), every HTTP error body (status >= 400), and every file
of the journals the test's daemons wrote.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets as secrets_module
from pathlib import Path

import pytest

MIN_SECRET_CHARS = 10
MAX_BUFFERED_CHARS = 64 * 1024 * 1024


class SecretScanner:
    def __init__(self) -> None:
        self.known: dict[str, str] = {}   # secret -> what it is
        self._pattern: re.Pattern | None = None
        self.texts: list[tuple[str, str]] = []   # (where, text) seen during the current test
        self._buffered = 0
        self.state_dirs: set[Path] = set()
        self.scanned_chars = 0
        self.learnt = 0

    # -- learning ---------------------------------------------------------------------------------
    def learn(self, kind: str, value) -> None:
        if isinstance(value, (bytes, bytearray)):
            for text in (bytes(value).hex(), bytes(value).hex().upper()):
                self.learn(kind, text)
            return
        if isinstance(value, str) and len(value) >= MIN_SECRET_CHARS and value not in self.known:
            self.known[value] = kind
            self._pattern = None
            self.learnt += 1

    def pattern(self) -> re.Pattern | None:
        if self._pattern is None and self.known:
            ordered = sorted(self.known, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return self._pattern

    # -- collecting ----------------------------------------------------------------------------------
    def saw(self, where: str, text) -> None:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", errors="replace")
        if not isinstance(text, str) or self._buffered > MAX_BUFFERED_CHARS:
            return
        self.texts.append((where, text))
        self._buffered += len(text)

    # -- checking -----------------------------------------------------------------------------------------
    def leaks(self) -> list[str]:
        for directory in sorted(self.state_dirs):
            journal = directory / "journal"
            if journal.is_dir():
                for path in sorted(journal.iterdir()):
                    if path.is_file() and path.name != "LOCK":
                        self.saw(f"journal file {path.name}", path.read_bytes())
            for name in ("run.json",):
                if (directory / name).is_file():
                    self.saw(name, (directory / name).read_bytes())
        pattern = self.pattern()
        found = []
        for where, text in self.texts:
            self.scanned_chars += len(text)
            if pattern is None:
                continue
            for match in pattern.finditer(text):
                secret = match.group(0)
                found.append(f"{self.known[secret]} {secret[:6]}... in {where}: "
                             f"...{text[max(0, match.start() - 60):match.end() + 20]!r}...")
        self.texts.clear()
        self._buffered = 0
        self.state_dirs.clear()
        return found


SCANNER = SecretScanner()


# The test clients' own libraries log the URLs the tests open (with ?key=...): that is the client
# side, not gatewayd's log.
CLIENT_LOGGERS = ("trio-websocket", "httpx", "httpcore")


class _LogCollector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(CLIENT_LOGGERS):
            return
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is not our concern here
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + record.stack_info
        SCANNER.saw(f"log {record.name} {record.levelname}", text)


def _wrap_arg(module, name: str, kind: str) -> None:
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapper(value, *args, **kwargs):
        SCANNER.learn(kind, value)
        return original(value, *args, **kwargs)

    setattr(module, name, wrapper)


def _wrap_result(module, name: str, kind: str) -> None:
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        value = original(*args, **kwargs)
        SCANNER.learn(kind, value)
        return value

    setattr(module, name, wrapper)


def _watch_sends(cls) -> None:
    send = cls.__dict__.get("send")
    if send is None:
        return

    async def sending(self, data):
        SCANNER.saw(f"WebSocket frame on {getattr(self, 'path', '?')}", data)
        return await send(self, data)

    cls.send = sending


def install() -> None:
    """Hook the places secrets are made and the places they must never reach. Idempotent."""
    if getattr(install, "done", False):
        return
    install.done = True
    from quart.app import Quart
    from quart.wrappers.websocket import Websocket
    from quart_trio.wrappers.websocket import TrioWebsocket

    from gatewayd import daemon, runtime, secretbox
    from gatewayd.web.asgi_ws import AsgiWebSocket
    from gatewayd import secrets_ as sec

    _wrap_arg(sec, "hash_token", "token")
    _wrap_arg(sec, "check_token", "token")
    _wrap_arg(sec, "hash_password", "password")
    _wrap_arg(sec, "check_password", "password")
    _wrap_result(sec, "new_token", "token")
    _wrap_result(secrets_module, "token_urlsafe", "random secret")

    seal = secretbox.SecretBox.seal

    def sealing(self, plaintext, *args, **kwargs):
        SCANNER.learn("sealed key", plaintext)
        return seal(self, plaintext, *args, **kwargs)

    secretbox.SecretBox.seal = sealing

    for cls in (Websocket, TrioWebsocket, AsgiWebSocket):  # the last: paths served in front of quart
        _watch_sends(cls)

    process_response = Quart.process_response

    async def processing(self, response, *args, **kwargs):
        response = await process_response(self, response, *args, **kwargs)
        status = getattr(response, "status_code", 200)
        if status >= 400 and not getattr(response, "is_streamed", False):
            try:
                SCANNER.saw(f"HTTP {status} body", await response.get_data())
            except Exception:  # noqa: BLE001 - a body that cannot be read here is not scanned
                pass
        return response

    Quart.process_response = processing

    open_core = runtime.open_core

    def opening(settings, *args, **kwargs):
        SCANNER.state_dirs.add(Path(settings.state_path))
        return open_core(settings, *args, **kwargs)

    runtime.open_core = opening
    daemon.open_core = opening

    root = logging.getLogger()
    root.addHandler(_LogCollector(logging.NOTSET))
    root.setLevel(logging.DEBUG)


def pytest_configure(config) -> None:
    install()


@pytest.fixture(autouse=True)
def _no_secret_leaks():
    SCANNER.leaks()  # forget what came before this test
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    yield
    found = SCANNER.leaks()
    if found:
        pytest.fail(f"{len(found)} secret leak(s):\n" + "\n".join(found[:20]), pytrace=False)


def pytest_terminal_summary(terminalreporter) -> None:
    terminalreporter.section("secret scan")
    terminalreporter.write_line(f"secrets learnt: {SCANNER.learnt}; characters scanned: {SCANNER.scanned_chars}")

"""`gatewayd monitor`: the Real Time Monitor in a terminal.

It connects to the running daemon's /monitor/communications (or /monitor/actions) WebSocket like
any other monitoring client: the port comes from <state_dir>/run.json (or --url), the API key from
--key or $GATEWAYD_API_KEY, sent in the Authorization header. One readable line per frame, or the
raw JSON with --json. A drop for being too slow (1013) is resumed with `since` automatically.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trio

from ...opcommands import CliError
from .resiot import connector_name
from ...textsafe import printable

KEY_ENV = "GATEWAYD_API_KEY"
CLOSE_SLOW = 1013
PAYLOAD_CHARS = 64
CONNECT_TIMEOUT = 10.0
_RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class MonitorCliError(Exception):
    pass


def add_monitor_parser(sub, common) -> None:
    parser = sub.add_parser("monitor", help="print the live communications (or actions) of a running gatewayd")
    common(parser)
    parser.add_argument("--since", type=int, metavar="SEQ", help="replay from this journal seq first (inclusive)")
    parser.add_argument("--types", help="comma-separated types, e.g. comm_rx,comm_tx")
    parser.add_argument("--dev", help="comma-separated device ids / EUIs")
    parser.add_argument("--connector", help="comma-separated connectors (ws, http, terminal, lorawan)")
    parser.add_argument("--actions", action="store_true", help="the actions stream instead of communications")
    parser.add_argument("--key", help=f"API key (default: ${KEY_ENV}; the variable keeps it out of `ps`)")
    parser.add_argument("--url", help="the daemon's base URL, e.g. http://127.0.0.1:3000 (default: from run.json)")
    parser.add_argument("--count", type=int, metavar="N", help="exit after N frames")
    parser.set_defaults(run_command=run)


def run(ns, settings) -> int:
    try:
        key = ns.key or os.environ.get(KEY_ENV, "")
        if not key:
            raise MonitorCliError(f"an API key is needed: --key or ${KEY_ENV} "
                                  "(create one with `gatewayd apikey create NAME`)")
        url = stream_url(ns, settings)
        return trio.run(_follow, url, key, ns, _ssl_context(url, settings, own_daemon=not ns.url))
    except MonitorCliError as exc:
        raise CliError(str(exc)) from None


# -- where to connect -------------------------------------------------------------------------------
def base_url(settings, explicit: str | None) -> str:
    if explicit:
        url = explicit.rstrip("/")
        if url.startswith("http"):
            url = "ws" + url[4:]
        if not url.startswith(("ws://", "wss://")):
            raise MonitorCliError(f"--url {explicit!r}: expected http(s):// or ws(s)://")
        return url
    runfile = Path(settings.state_path) / "run.json"
    try:
        info = json.loads(runfile.read_text())
        port = int(info["http_port"])
    except FileNotFoundError:
        raise MonitorCliError(f"no running gatewayd found ({runfile} is missing); "
                              "start it or pass --url") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MonitorCliError(f"cannot read {runfile}: {exc}") from None
    host = info.get("host") or "127.0.0.1"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    scheme = "wss" if settings.server.certfile else "ws"
    return f"{scheme}://{host}:{port}"


def stream_url(ns, settings) -> str:
    query: dict[str, Any] = {}
    if ns.since is not None:
        query["since"] = ns.since
    for name in ("types", "dev", "connector"):
        if getattr(ns, name):
            query[name] = getattr(ns, name)
    path = "/monitor/actions" if ns.actions else "/monitor/communications"
    return base_url(settings, ns.url) + path + (f"?{urlencode(query)}" if query else "")


def _ssl_context(url: str, settings, own_daemon: bool) -> ssl.SSLContext | None:
    if not url.startswith("wss://"):
        return None
    context = ssl.create_default_context()
    if settings.server.certfile and own_daemon:
        # Our own daemon: trust its certificate file rather than a CA (often self-signed).
        context.load_verify_locations(settings.server.certfile)
        context.check_hostname = False
    return context


def _with_since(url: str, since: int) -> str:
    base, _, query = url.partition("?")
    parts = [p for p in query.split("&") if p and not p.startswith("since=")]
    parts.append(f"since={since}")
    return base + "?" + "&".join(parts)


# -- following the stream ---------------------------------------------------------------------------------
async def _follow(url: str, key: str, ns, ssl_context) -> int:
    from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, open_websocket_url

    headers = [(b"Authorization", f"Bearer {key}".encode())]
    shown = 0
    while True:
        resume = None
        try:
            async with open_websocket_url(url, ssl_context, extra_headers=headers,
                                          connect_timeout=CONNECT_TIMEOUT, disconnect_timeout=2) as ws:
                while ns.count is None or shown < ns.count:
                    text = await ws.get_message()
                    print(json_line(text) if ns.json else format_line(text, actions=ns.actions), flush=True)
                    shown += 1
                    resume = _next_seq(text, resume)
                return 0
        except ConnectionRejected as exc:
            body = _error_message(exc.body)
            raise MonitorCliError(f"the daemon refused the connection (HTTP {exc.status_code}"
                                  f"{': ' + body if body else ''})") from None
        except (OSError, HandshakeError, trio.TooSlowError) as exc:
            raise MonitorCliError(f"cannot connect to {url.split('?')[0]}: {exc or 'timed out'}") from None
        except ConnectionClosed as exc:
            reason = exc.reason
            if reason is not None and reason.code == CLOSE_SLOW:
                # The daemon names the exact place; the last Seq seen (inclusive) is the fallback.
                since = _since_from_reason(reason.reason)
                since = resume if since is None else since
                if since is None:
                    raise MonitorCliError("dropped as too slow and no place to resume from") from None
                print(f"-- fell behind; resuming from seq {since}", file=sys.stderr, flush=True)
                url = _with_since(url, since)
                continue
            code = reason.code if reason is not None else "none"
            text = reason.reason if reason is not None and reason.reason else ""
            raise MonitorCliError(f"the daemon closed the stream ({code}{': ' + text if text else ''})") from None


def _error_message(body: bytes | None) -> str:
    try:
        return str(json.loads(body or b"{}").get("message", ""))[:200]
    except (ValueError, AttributeError):
        return ""


def _next_seq(text: str, current: int | None) -> int | None:
    try:
        seq = json.loads(text).get("Seq")
    except (ValueError, AttributeError):
        return current
    return seq if isinstance(seq, int) else current


def _since_from_reason(reason: str | None) -> int | None:
    marker = "since="
    if reason and marker in reason:
        digits = reason.split(marker, 1)[1].split()[0].strip(".;,)")
        if digits.isdigit():
            return int(digits)
    return None


# -- one line per frame ----------------------------------------------------------------------------------
def _when(dt: str) -> str:
    # "2026-11-22T04:05:06.1234567+01:00" -> "2026-11-22 04:05:06.123" (the daemon's local time)
    return dt[:10] + " " + dt[11:23] if len(dt) >= 23 else dt


def _payload(hex_text: str, connector: str) -> str:
    try:
        raw = bytes.fromhex(hex_text)
    except ValueError:
        return hex_text
    shown = hex_text
    if connector != "lorawan" and raw:
        try:
            text = raw.decode("utf-8")
            if text.isprintable():
                shown = text
        except UnicodeDecodeError:
            pass
    return shown if len(shown) <= PAYLOAD_CHARS else shown[:PAYLOAD_CHARS - 3] + "..."


def json_line(text: str) -> str:
    """A frame for --json output: control characters JSON leaves raw (DEL, C1) as \\u escapes."""
    if not _RAW_CONTROL.search(text):
        return text
    try:
        return json.dumps(json.loads(text), separators=(",", ":"))
    except ValueError:
        return printable(text)


def format_line(text: str, *, actions: bool = False) -> str:
    """One frame as a line for people; whatever it carries, no control character reaches the terminal."""
    return printable(_format_line(text, actions=actions))


def _format_line(text: str, *, actions: bool = False) -> str:
    try:
        frame = json.loads(text)
    except ValueError:
        return text
    if not isinstance(frame, dict):
        return text
    if actions or "ActionType" in frame:
        details = json.dumps(frame.get("Details", {}), separators=(",", ":"), default=str)
        return (f"{_when(str(frame.get('DT', '')))}  #{frame.get('Seq', '')}  {frame.get('ActionType', ''):<22} "
                f"{frame.get('Actor', '')} -> {frame.get('Target', '')}  {details}")
    if "Result" in frame:
        details = frame.get("Details") or "queued"
        return f"TX {frame.get('Result')}: {details} (reference {frame.get('Reference', '')!r})"
    connector = connector_name(str(frame.get("Connector", "")))
    extra = frame.get("Extra") if isinstance(frame.get("Extra"), dict) else {}
    parts = [_when(str(frame.get("DT", ""))), f"#{frame.get('Seq', '')}",
             f"{frame.get('CommType', frame.get('MsgType', '')):<14}", f"{connector:<8}",
             str(frame.get("DevEui", "")) or "-"]
    if frame.get("Port"):
        parts.append(f"port {frame['Port']}")
    if frame.get("Payload"):
        parts.append(_payload(str(frame["Payload"]), connector))
    for key in ("rssi", "snr"):
        if key in extra:
            parts.append(f"{key} {extra[key]}")
    if frame.get("GatewayEUIs"):
        parts.append("gw " + ",".join(map(str, frame["GatewayEUIs"])))
    if frame.get("Command"):
        parts.append(f"command {frame['Command']}")
    if frame.get("Reference"):
        parts.append(f"ref {frame['Reference']}")
    if frame.get("Error"):
        parts.append(f"error {frame['Error']}")
    elif extra.get("type") and not frame.get("Payload"):
        parts.append(str(extra["type"]))
    return "  ".join(parts)

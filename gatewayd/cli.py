"""The command line: `gatewayd serve`, and operator commands that work with or without the daemon.

State-changing commands go to the running daemon through its control socket; when none runs they
take the journal lock and run the same operation directly on the state directory.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import logging
import sys
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from typing import Any, Callable

import trio

from . import __version__, config as config_mod
from .logs import setup_logging

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    def __init__(self, message: str, status: int = EXIT_FAIL):
        super().__init__(message)
        self.status = status


# -- running an operation ---------------------------------------------------------------------
def run_op(settings: config_mod.Settings, name: str, args: dict[str, Any], timeout: float = 30.0) -> Any:
    from .transports import control

    path = control.socket_path(settings.state_path)
    if path.exists():
        try:
            reply = control.call_blocking(path, name, args, timeout=timeout)
        except (ConnectionRefusedError, FileNotFoundError):
            reply = None  # a stale socket: the daemon is not running
        except OSError as exc:
            raise CliError(f"cannot reach the daemon at {path}: {exc.strerror or exc}") from None
        if reply is not None:
            if not reply.get("ok"):
                error = reply.get("error", {})
                raise CliError(f"{error.get('code', 'error')}: {error.get('message', 'failed')}")
            return reply["result"]
    return trio.run(_run_offline, settings, name, args)


async def _run_offline(settings, name, args):
    from . import ops
    from .journal.lock import JournalLocked
    from .journal.reader import CorruptJournal
    from .journal.writer import JournalUnavailable
    from .runtime import open_core

    failure = None
    try:
        async with open_core(settings, online=False) as core:
            try:
                return await ops.call(core, name, args)
            except (ops.OpError, JournalUnavailable) as exc:
                failure = exc  # raised below: out of the core's nursery, which would wrap it in a group
    except ops.OpError as exc:
        raise CliError(f"{exc.code}: {exc.message}") from None
    except (JournalLocked, CorruptJournal, JournalUnavailable) as exc:
        raise CliError(str(exc)) from None
    if isinstance(failure, ops.OpError):
        raise CliError(f"{failure.code}: {failure.message}") from None
    raise CliError(str(failure)) from None


# -- output -----------------------------------------------------------------------------------------
def _print_result(result: Any, as_json: bool, human: Callable[[Any], str] | None) -> None:
    if as_json or human is None:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(human(result))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    for row in rows:
        lines.append("  ".join(str(row.get(c, "") if row.get(c) is not None else "-").ljust(widths[c])
                               for c in columns))
    return "\n".join(lines)


def _pairs(result: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in result.items())


# -- operator commands as data: (words, op, arguments, human formatter) ------------------------------
@dataclass
class Arg:
    name: str
    help: str = ""
    flag: bool = False           # --name VALUE instead of positional
    switch: bool = False         # --name (boolean)
    type: Callable[[str], Any] = str
    dest: str | None = None      # the operation's argument name, when it differs


@dataclass
class OpCommand:
    words: tuple[str, ...]
    op: str
    help: str
    args: list[Arg] = field(default_factory=list)
    human: Callable[[Any], str] | None = None
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def _apikey_created(r):
    return (f"API key {r['key_id']} ({r['name']}) created. It is shown only now:\n{r['key']}")


OP_COMMANDS: list[OpCommand] = [
    OpCommand(("apikey", "create"), "apikey.create", "create an API key (printed once)",
              [Arg("name", "what the key is for")], _apikey_created),
    OpCommand(("apikey", "list"), "apikey.list", "list API keys",
              human=lambda r: _table(r, ["key_id", "name", "created", "revoked"])),
    OpCommand(("apikey", "revoke"), "apikey.revoke", "revoke an API key", [Arg("key_id")],
              lambda r: f"API key {r['key_id']} revoked"),
    OpCommand(("journal", "compact"), "journal.compact", "write a snapshot and apply retention now",
              human=_pairs),
]


def register_op_commands(commands: list[OpCommand]) -> None:
    """Other modules add their commands here (devices, terminals, gateways ...)."""
    OP_COMMANDS.extend(commands)


def _load_domain_commands() -> None:
    from .services import catalog  # noqa: F401  (registers operations and their commands)


# -- parser -------------------------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="configuration file (default /etc/gatewayd/gatewayd.toml if present)")
    parser.add_argument("--state-dir", help="state directory (overrides server.state_dir)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    _load_domain_commands()
    parser = argparse.ArgumentParser(prog="gatewayd", description="On-prem device gateway.")
    parser.add_argument("--version", action="version", version=f"gatewayd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from .monitor_cli import add_monitor_parser  # `gatewayd monitor`: a streaming client
    add_monitor_parser(sub, _common)
    from .services.backup_cli import add_backup_parsers  # `gatewayd backup` / `gatewayd restore`
    add_backup_parsers(sub, _common)

    serve = sub.add_parser("serve", help="run the daemon")
    _common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--udp-port", type=int)

    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    check = cfg_sub.add_parser("check", help="validate and print the effective configuration")
    _common(check)
    sample = cfg_sub.add_parser("sample", help="print the commented sample configuration")
    _common(sample)
    _common(cfg_sub.add_parser("reference", help="print the configuration reference (Markdown)"))

    admin = sub.add_parser("admin", help="the dashboard's admin account")
    admin_sub = admin.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    setpw = admin_sub.add_parser("set-password", help="set the admin password")
    _common(setpw)
    setpw.add_argument("--password-stdin", action="store_true", help="read the new password from stdin")

    journal = sub.add_parser("journal", help="audit and maintain the journal")
    journal_sub = journal.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    for name, text in (("verify", "check every checksum and sequence number"),
                       ("repair", "set damaged lines aside (daemon must be stopped)")):
        _common(journal_sub.add_parser(name, help=text))
    replay = journal_sub.add_parser("replay", help="print the state as it was at a point in time")
    _common(replay)
    replay.add_argument("--until", required=True, help="a seq number or an ISO 8601 time (UTC if no zone)")
    export = journal_sub.add_parser("export", help="export records")
    _common(export)
    export.add_argument("--type", action="append", help="record type (prefix with * for a family: device.*)")
    export.add_argument("--since", help="seq or ISO time (inclusive)")
    export.add_argument("--until", help="seq or ISO time (inclusive)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")

    groups: dict[str, argparse._SubParsersAction] = {"journal": journal_sub, "admin": admin_sub,
                                                     "config": cfg_sub}
    for command in OP_COMMANDS:
        head, *rest = command.words
        if head not in groups:
            group = sub.add_parser(head, help=f"{head} commands")
            groups[head] = group.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
        p = groups[head].add_parser(" ".join(rest), help=command.help)
        _common(p)
        for arg in command.args:
            if arg.switch:
                p.add_argument(f"--{arg.name.replace('_', '-')}", dest=arg.name, action="store_true", help=arg.help)
            elif arg.flag:
                p.add_argument(f"--{arg.name.replace('_', '-')}", dest=arg.name, type=arg.type, help=arg.help)
            else:
                p.add_argument(arg.name, type=arg.type, help=arg.help)
        p.set_defaults(op_command=command)
    return parser


def _settings(ns: argparse.Namespace) -> config_mod.Settings:
    overrides = {"server": {"state_dir": getattr(ns, "state_dir", None), "host": getattr(ns, "host", None),
                            "port": getattr(ns, "port", None), "udp_port": getattr(ns, "udp_port", None)}}
    return config_mod.load(ns.config, overrides), overrides


# -- journal commands (read-only: no lock needed) -------------------------------------------------------
def _seq_or_time(value: str) -> tuple[int | None, str | None]:
    if value.isdigit():
        return int(value), None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{value!r} is neither a seq number nor an ISO 8601 time", EXIT_USAGE) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return None, moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seq_at_time(reader, ts: str) -> int:
    last = 0
    for record in reader.records():
        if record.ts > ts:
            break
        last = record.seq
    return last


def _journal_command(ns, settings) -> int:
    from .journal.reader import CorruptJournal, JournalReader
    from .runtime import load_state

    directory = settings.state_path / "journal"
    reader = JournalReader(directory)
    if ns.sub == "verify":
        from .history.maintenance import integrity_report

        report = reader.verify()
        history = integrity_report(settings.state_path)
        if ns.json:
            print(json.dumps(report.__dict__ | {"ok": report.ok and history["ok"], "history": history}, indent=2))
        else:
            print(f"segments: {report.segments}, records: {report.records}, "
                  f"seq {report.first_seq or 0}..{report.last_seq}, snapshots: {report.snapshots or 'none'}")
            if report.torn_tail:
                print(f"torn tail (cut at the next start): {report.torn_tail}")
            for problem in report.problems:
                print(f"PROBLEM: {problem}")
            print("journal OK" if report.ok else f"journal DAMAGED: {len(report.problems)} problem(s)")
            if not history["exists"]:
                print("history store: none yet (built at the next start)")
            elif history["ok"]:
                print(f"history store OK (seq {history['position']})")
            else:
                for problem in history["problems"]:
                    print(f"PROBLEM: history store: {problem}")
                print("history store DAMAGED: run `gatewayd history rebuild` (the daemon also rebuilds it "
                      "when it meets the damage)")
        return EXIT_OK if report.ok and history["ok"] else EXIT_FAIL
    if ns.sub == "repair":
        from .journal.lock import JournalLock, JournalLocked

        try:
            with JournalLock(directory):
                dropped = reader.repair()
        except JournalLocked as exc:
            raise CliError(f"{exc}; stop the daemon before repairing") from None
        for line in dropped:
            print(f"dropped: {line}")
        print("nothing to repair" if not dropped else f"repaired: {len(dropped)} item(s) set aside")
        return EXIT_OK
    if ns.sub == "replay":
        seq, ts = _seq_or_time(ns.until)
        if seq is None:
            seq = _seq_at_time(reader, ts)
        try:
            state, _ = load_state(directory, until_seq=seq, cut_tail=False)
        except CorruptJournal as exc:
            raise CliError(str(exc)) from None
        print(json.dumps(state.snapshot(), indent=2, default=str))
        return EXIT_OK
    if ns.sub == "export":
        return _export(ns, reader)
    raise CliError(f"unknown journal command {ns.sub}", EXIT_USAGE)


def _export(ns, reader) -> int:
    since_seq, since_ts = _seq_or_time(ns.since) if ns.since else (None, None)
    until_seq, until_ts = _seq_or_time(ns.until) if ns.until else (None, None)
    types = ns.type or []

    def wanted(record) -> bool:
        if types and not any(record.type == t or (t.endswith("*") and record.type.startswith(t[:-1]))
                             for t in types):
            return False
        if since_ts and record.ts < since_ts:
            return False
        if until_ts and record.ts > until_ts:
            return False
        return True

    out = sys.stdout
    writer = csv.writer(out) if ns.format == "csv" else None
    if writer:
        writer.writerow(["seq", "ts", "type", "data"])
    for record in reader.records(after_seq=(since_seq - 1) if since_seq else 0, until_seq=until_seq):
        if not wanted(record):
            continue
        if writer:
            writer.writerow([record.seq, record.ts, record.type, json.dumps(record.data, ensure_ascii=False)])
        else:
            out.write(json.dumps({"seq": record.seq, "ts": record.ts, "type": record.type, "data": record.data},
                                 ensure_ascii=False) + "\n")
    return EXIT_OK


# -- main ---------------------------------------------------------------------------------------------------
def _serve(settings, config_path, overrides) -> int:
    from .daemon import serve
    from .journal.lock import JournalLocked
    from .journal.reader import CorruptJournal

    setup_logging(settings.log.level)
    log = logging.getLogger("gatewayd")
    try:
        return trio.run(partial(serve, settings, config_path, overrides, tune_gc=True))
    except (JournalLocked, CorruptJournal) as exc:
        log.critical("cannot start: %s", exc)
        return EXIT_FAIL
    except OSError as exc:
        if exc.errno in (98, 13):  # EADDRINUSE, EACCES
            log.critical("cannot start: %s (port %s)", exc.strerror, settings.server.port)
            return EXIT_FAIL
        log.critical("gatewayd stopped: %s", exc, exc_info=True)
        return EXIT_FAIL
    except Exception as exc:
        # A critical task died: say so in one clear line (the traceback follows for the log reader)
        # and exit non-zero so that systemd restarts the service.
        log.critical("gatewayd stopped: a critical task failed: %r", exc, exc_info=True)
        return EXIT_FAIL

def _dispatch(ns, settings, overrides) -> int:
    if ns.command == "serve":
        return _serve(settings, ns.config, overrides)
    if ns.command == "config":
        if ns.sub == "sample":
            print(config_mod.sample_toml())
            return EXIT_OK
        if ns.sub == "reference":
            print(config_mod.reference_markdown())
            return EXIT_OK
        print(f"# {settings.source}: valid" if not ns.json else "", end="\n" if not ns.json else "")
        data = settings.to_dict(redact=True)
        if ns.json:
            print(json.dumps(data, indent=2))
        else:
            for hook in data.pop("webhooks"):
                data.setdefault("[webhooks]", []).append(hook)
            for section, values in data.items():
                if section == "[webhooks]":  # an array of tables
                    for hook in values:
                        print("[[webhooks]]")
                        print("\n".join(f"{k} = {config_mod._toml_value(v)}" for k, v in hook.items()) + "\n")
                    continue
                print(f"[{section}]")
                for key, value in values.items():
                    print(f"{key} = {config_mod._toml_value(value) if not isinstance(value, dict) else json.dumps(value)}")
                print()
        return EXIT_OK
    if ns.command == "journal" and getattr(ns, "op_command", None) is None:
        return _journal_command(ns, settings)
    if ns.command == "admin" and ns.sub == "set-password":
        if ns.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("new admin password: ")
            if getpass.getpass("again: ") != password:
                raise CliError("the passwords differ")
        run_op(settings, "admin.set_password", {"password": password})
        print("admin password changed")
        return EXIT_OK
    if getattr(ns, "run_command", None) is not None:  # commands with their own runner (monitor)
        return ns.run_command(ns, settings)
    command: OpCommand | None = getattr(ns, "op_command", None)
    if command is None:
        raise CliError("no command given; see gatewayd --help", EXIT_USAGE)
    args = {arg.dest or arg.name: getattr(ns, arg.name) for arg in command.args
            if getattr(ns, arg.name) is not None}
    if command.prepare:
        args = command.prepare(args)
    result = run_op(settings, command.op, args)
    _print_result(result, ns.json, command.human)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        parser.print_help()
        return EXIT_USAGE
    if ns.command != "serve":
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings, overrides = _settings(ns)
    except config_mod.ConfigError as exc:
        print(f"gatewayd: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _dispatch(ns, settings, overrides)
    except CliError as exc:
        print(f"gatewayd: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

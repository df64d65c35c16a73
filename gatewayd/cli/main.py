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
from functools import partial
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import trio

from .. import __version__, config as config_mod
from ..connector import Connector
from ..connectors import CONNECTORS
from ..daemon import serve
from ..journal.lock import JournalLock, JournalLocked
from ..journal.reader import CorruptJournal, JournalReader
from ..logs import setup_logging
from ..opcommands import EXIT_OK, EXIT_FAIL, EXIT_USAGE, Arg, CliError, OpCommand, pairs as _pairs, table as _table
from ..replay import load_state
from ..textsafe import printable
from ..history import ops as history_ops
from .backup import add_backup_parsers
from .run import run_op


# -- output -----------------------------------------------------------------------------------------
def _print_result(result: Any, as_json: bool, human: Callable[[Any], str] | None) -> None:
    if as_json or human is None:
        print(json.dumps(result, indent=2, default=str))  # ASCII only: control characters are escaped
    else:
        # Names and serial numbers come from devices: no control character reaches the terminal.
        print(printable(human(result), keep_newlines=True))


# -- operator commands as data: (words, op, arguments, human formatter) ------------------------------
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
    *history_ops.COMMANDS,
]


# -- parser -------------------------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="configuration file (default /etc/gatewayd/gatewayd.toml if present)")
    parser.add_argument("--state-dir", help="state directory (overrides server.state_dir)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def build_parser(connectors: Sequence[Connector] = CONNECTORS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatewayd", description="On-prem device gateway.")
    parser.add_argument("--version", action="version", version=f"gatewayd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for connector in connectors:  # commands with their own runner (`gatewayd monitor`)
        for add_parser in connector.parsers:
            add_parser(sub, _common)
    add_backup_parsers(sub, _common)  # `gatewayd backup` / `gatewayd restore`

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
    for command in [*OP_COMMANDS, *(c for connector in connectors for c in connector.commands)]:
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
    directory = settings.state_path / "journal"
    reader = JournalReader(directory)
    if ns.sub == "verify":
        from ..history.maintenance import integrity_report

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
            state, _ = load_state(directory, until_seq=seq, cut_tail=False, connectors=CONNECTORS)
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
    setup_logging(settings.log.level)
    log = logging.getLogger("gatewayd")
    try:
        return trio.run(partial(serve, settings, config_path, overrides, connectors=CONNECTORS, tune_gc=True))
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

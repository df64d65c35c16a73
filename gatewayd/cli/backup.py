"""`gatewayd backup FILE` and `gatewayd restore FILE`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Callable

from ..backup import BackupError, restore_backup
from ..connectors import CONNECTORS
from ..opcommands import EXIT_OK, EXIT_USAGE, CliError
from .run import run_op

# A backup of a large journal on an SD card takes a while; the daemon keeps serving meanwhile.
BACKUP_TIMEOUT = 3600.0


def add_backup_parsers(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    backup = sub.add_parser("backup", help="write a consistent backup of the state (also while gatewayd runs)")
    common(backup)
    backup.add_argument("file", help="the backup file to create (a .tar.gz holding secrets: keep it safe)")
    backup.set_defaults(run_command=run_backup)
    restore = sub.add_parser("restore", help="restore a backup into an empty state directory (gatewayd stopped)")
    common(restore)
    restore.add_argument("file", help="a file written by `gatewayd backup`")
    restore.set_defaults(run_command=run_restore)


def run_backup(ns: argparse.Namespace, settings) -> int:
    target = Path(ns.file)
    if target.exists() or target.is_symlink():
        raise CliError(f"{target} exists; choose a new name (a backup never overwrites a file)", EXIT_USAGE)
    if not target.parent.is_dir():
        raise CliError(f"{target.parent} is not a directory", EXIT_USAGE)
    result = _take_backup(settings)
    written = Path(result["path"])
    try:
        _move(written, target)
    except OSError as exc:
        raise CliError(f"the backup is in {written}, but copying it to {target} failed: {exc}") from None
    result["path"] = str(target)
    if ns.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"backup of seq {result['seq']} written to {target} ({result['bytes']} bytes, "
              f"{result['files']} files, sha256 {result['sha256']})")
        print("it holds the state directory's keys: keep it where only administrators can read it")
    return EXIT_OK


def _take_backup(settings) -> dict[str, Any]:
    return run_op(settings, "state.backup", {}, timeout=BACKUP_TIMEOUT)


def _move(source: Path, target: Path) -> None:
    """Copy to a new 0600 file owned by whoever runs the command, make it durable, drop the source."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            while chunk := src.read(1024 * 1024):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    source.unlink()


def run_restore(ns: argparse.Namespace, settings) -> int:
    try:
        result = restore_backup(Path(ns.file), settings.state_path, connectors=CONNECTORS)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    if ns.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"restored seq {result['seq']} ({result['files']} files, taken {result['created']} by gatewayd "
              f"{result['version']}) into {result['state_dir']}; checksums verified and the journal replayed")
        print("start gatewayd now (systemctl start gatewayd)")
    return EXIT_OK

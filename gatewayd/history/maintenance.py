"""The history store as a file: its integrity check and a consistent copy (for backups)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from . import schema

BACKUP_MEMBER = f"{schema.DIRECTORY}/{schema.FILENAME}"


def integrity_report(state_dir: Path) -> dict[str, Any]:
    """`PRAGMA integrity_check` of a state directory's store (blocking; `journal verify`, backups)."""
    path = schema.store_path(state_dir)
    if not path.exists():
        return {"path": str(path), "exists": False, "ok": True, "problems": []}
    try:
        conn = schema.connect(path, readonly=True)
        try:
            problems = schema.integrity_problems(conn)
            position = conn.execute("SELECT value FROM meta WHERE name = 'position'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        problems, position = [str(exc)], None
    return {"path": str(path), "exists": True, "ok": not problems, "problems": problems[:20],
            "position": position[0] if position else None}


def copy_store(state_dir: Path, target: Path) -> bool:
    """Blocking: a consistent copy of the store (as of one moment) into `target`. False when there is none."""
    path = schema.store_path(state_dir)
    if not path.exists():
        return False
    source = schema.connect(path, readonly=True)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    return True


def check_file(path: Path) -> list[str]:
    """`PRAGMA integrity_check` of a store file that no daemon uses ([] when sound)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return schema.integrity_problems(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]

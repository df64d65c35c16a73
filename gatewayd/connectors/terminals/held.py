"""Punches of terminals waiting for approval: kept on disk only, within tight caps.

A pending terminal is told `result:false`, so it keeps its punches and sends them again; what we
keep here is a courtesy that lets an approval show them at once. They are not journaled and not
held in memory: one file per terminal under `<state_dir>/held/` (JSON lines, each the punch as the
terminal sent it), read and rewritten in a worker thread. Caps: `terminals.max_held_per_terminal`
punches per terminal and `terminals.max_held_bytes` for all files together; a batch that would
pass either is not kept (the terminal is told so and keeps it). Approving a terminal feeds its file
through the attendance store (journaled then, deduplicated as usual) and removes it; rejecting or
deleting removes it. A file whose terminal was approved before its punches were released (a crash
in between) is released at the next start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable

import trio

from . import punches as tpunch
from ...errors import ProtocolError

log = logging.getLogger("gatewayd.terminals.held")

SUFFIX = ".jsonl"


def _file_name(sn: str) -> str:
    return hashlib.sha256(sn.encode()).hexdigest()[:32] + SUFFIX


class HeldPunches:
    def __init__(self, directory: Path, limits: Callable[[], tuple[int, int]]):
        """`limits()` gives (punches per terminal, bytes in all) from the live settings."""
        self.directory = Path(directory)
        self._limits = limits
        self._counts: dict[str, int] = {}   # sn -> punches kept
        self._sizes: dict[str, int] = {}    # sn -> bytes of its file
        self._lock = trio.Lock()            # one change at a time: keep, release and drop read-modify-write

    # -- reading --------------------------------------------------------------------------------
    def count(self, sn: str) -> int:
        return self._counts.get(sn, 0)

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes.values())

    def terminals(self) -> list[str]:
        return list(self._counts)

    def load(self) -> None:
        """Count what is on disk (at start)."""
        self._counts.clear()
        self._sizes.clear()
        if not self.directory.is_dir():
            return
        for path in self.directory.glob("*" + SUFFIX):
            sn, punches = _read(path)
            if sn is None:
                log.warning("held punches: %s is unreadable; removed", path.name)
                path.unlink(missing_ok=True)
                continue
            self._counts[sn] = len(punches)
            self._sizes[sn] = path.stat().st_size

    # -- changing -------------------------------------------------------------------------------
    async def keep(self, sn: str, punches: list[tpunch.Punch]) -> tuple[int, bool]:
        """Add the punches not kept yet. Returns (punches kept for `sn`, whether this batch fit)."""
        async with self._lock:
            per_terminal, all_bytes = self._limits()
            outcome = await trio.to_thread.run_sync(self._merge, sn, punches, per_terminal,
                                                    all_bytes - self.total_bytes + self._sizes.get(sn, 0))
            count, size, fitted = outcome
            if count:
                self._counts[sn], self._sizes[sn] = count, size
            return count, fitted

    async def take(self, sn: str) -> list[tpunch.Punch]:
        """The punches kept for `sn` (the file stays until `drop`)."""
        async with self._lock:
            _, punches = await trio.to_thread.run_sync(_read, self._path(sn))
            return punches

    async def drop(self, sn: str) -> int:
        """Remove what is kept for `sn`; returns how many punches that was."""
        async with self._lock:
            count = self._counts.pop(sn, 0)
            self._sizes.pop(sn, None)
            await trio.to_thread.run_sync(_remove, self._path(sn), self.directory)
            return count

    # -- files (worker thread) ------------------------------------------------------------------
    def _path(self, sn: str) -> Path:
        return self.directory / _file_name(sn)

    def _merge(self, sn: str, punches: list[tpunch.Punch], per_terminal: int, room_bytes: int) -> tuple[int, int, bool]:
        path = self._path(sn)
        _, kept = _read(path)
        keys = {tpunch.dedup_key(sn, p) for p in kept}
        fresh = []
        for punch in punches:
            key = tpunch.dedup_key(sn, punch)
            if key not in keys:
                keys.add(key)
                fresh.append(punch)
        size = path.stat().st_size if path.exists() else 0
        if not fresh:
            return len(kept), size, True
        lines = [json.dumps(tpunch.punch_to_record(p), separators=(",", ":"), ensure_ascii=False) for p in fresh]
        header = "" if kept else json.dumps({"sn": sn}) + "\n"
        text = header + "".join(line + "\n" for line in lines)
        added = len(text.encode())
        if len(kept) + len(fresh) > per_terminal or size + added > room_bytes:
            return len(kept), size, False
        self.directory.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(kept) + len(fresh), size + added, True


def _read(path: Path) -> tuple[str | None, list[tpunch.Punch]]:
    """(sn, punches) of a held file; a torn or bad line ends the reading there."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None, []
    except (OSError, UnicodeDecodeError):
        return None, []
    try:
        sn = json.loads(lines[0])["sn"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None, []
    punches = []
    for line in lines[1:]:
        try:
            punches.append(tpunch.parse_punch(json.loads(line)))
        except (ValueError, ProtocolError):
            break
    return sn, punches


def _remove(path: Path, directory: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

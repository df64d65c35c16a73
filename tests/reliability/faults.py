"""Fault injection at the journal's OS-call boundary (gatewayd/journal/fileops.py)."""

from __future__ import annotations

import errno as errno_mod
import os
import random

from gatewayd.journal.fileops import FileOps


class Faults:
    """What the next journal OS calls do. Shared by every FaultyFileOps (one per writer)."""

    def __init__(self) -> None:
        self.errno: int | None = None
        self.calls = ("write", "sync")
        self.probability = 1.0
        self.short_writes = False  # a failing write first writes part of its bytes
        self.rng = random.Random(0)
        self.injected = 0

    def fail(self, error: int = errno_mod.ENOSPC, calls=("write", "sync"), probability: float = 1.0,
             short_writes: bool = False) -> None:
        self.errno, self.calls, self.probability, self.short_writes = error, calls, probability, short_writes

    def clear(self) -> None:
        self.errno = None

    def should_fail(self, call: str) -> bool:
        if self.errno is None or call not in self.calls:
            return False
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.injected += 1
        return True

    def error(self) -> OSError:
        return OSError(self.errno, os.strerror(self.errno))


FAULTS = Faults()


class FaultyFileOps(FileOps):
    def __init__(self, faults: Faults = FAULTS):
        self.faults = faults

    def write(self, fd: int, data) -> int:
        if self.faults.should_fail("write"):
            if self.faults.short_writes and len(data) > 1:
                os.write(fd, bytes(data[:len(data) // 2]))  # what a filling disk does: some bytes land
            raise self.faults.error()
        return super().write(fd, data)

    def sync(self, fd: int) -> None:
        if self.faults.should_fail("sync"):
            raise self.faults.error()
        super().sync(fd)

    def open_append(self, path) -> int:
        if self.faults.should_fail("open"):
            raise self.faults.error()
        return super().open_append(path)

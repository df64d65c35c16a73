"""The journal's single-writer lock: an flock on a file in the journal directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class JournalLocked(RuntimeError):
    pass


class JournalLock:
    """Held by exactly one process (the daemon, or an offline command) at a time."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / "LOCK"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise JournalLocked(
                f"the journal in {self.path.parent} is in use by another process (pid {holder}); "
                "if gatewayd is running, commands reach it through its control socket"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def fileno(self) -> int | None:
        """The locked file's descriptor while held: a child process given it holds the lock too."""
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "JournalLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

"""The journal's boundary with the operating system, small enough to swap for fault injection."""

from __future__ import annotations

import os


class FileOps:
    """Plain OS calls. Tests substitute a subclass that raises ENOSPC or EIO on demand."""

    def open_append(self, path) -> int:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def sync(self, fd: int) -> None:
        os.fdatasync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def close(self, fd: int) -> None:
        os.close(fd)

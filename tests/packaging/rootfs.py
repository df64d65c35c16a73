"""Throwaway roots to install the package into.

`OverlayRoot`: this machine's own root file system under a copy-on-write overlay, in a private mount
namespace, entered with chroot. Everything dpkg and the maintainer scripts write lands in the
overlay's upper directory; the machine itself is never touched. Each `run` mounts the overlay
afresh (the upper directory carries the changes from one command to the next), so only one
command may run at a time.

`DebootstrapRoot`: a minimal Debian bookworm made by debootstrap from Debian's packages (slow,
opt-in): the package then meets only what its Depends bring.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

_ENTER = """
set -e
mount --make-rprivate /
{mount_root}
mount -t proc proc "$M/proc"
mount --rbind /dev "$M/dev"
mount --make-rslave "$M/dev"
mount -t tmpfs -o mode=0755 tmpfs "$M/run"
mkdir -p "$M/tmp/pkg"
mount --bind "$PKG" "$M/tmp/pkg"
exec chroot {userspec} "$M" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
"""


def available() -> str | None:
    """Why a throwaway root cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces, overlayfs, chroot)"
    for tool in ("unshare", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


class _Root:
    def __init__(self, base: Path, packages: Path):
        self.base = Path(base)
        self.packages = Path(packages)  # shown inside the root as /tmp/pkg

    def _mount_root(self) -> str:
        raise NotImplementedError

    def command(self, *argv: str, user: str | None = None) -> list[str]:
        script = _ENTER.format(mount_root=self._mount_root(),
                               userspec=f"--userspec={user}:{user}" if user else "")
        return ["unshare", "--mount", "--fork", "--kill-child", "sh", "-c", script, "enter", *argv]

    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "M": str(self.mountpoint),
                "PKG": str(self.packages)}

    def run(self, *argv: str, user: str | None = None, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(self.command(*argv, user=user), env=self.env(), capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{shlex.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def sh(self, script: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("/bin/sh", "-c", script, **kwargs)

    def start(self, *argv: str, user: str | None = None) -> subprocess.Popen:
        return subprocess.Popen(self.command(*argv, user=user), env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def path(self, inside: str) -> Path:
        """Where a file the root wrote can be read from outside (valid for files, not deletions)."""
        raise NotImplementedError


class OverlayRoot(_Root):
    def __init__(self, base: Path, packages: Path):
        super().__init__(base, packages)
        self.upper = self.base / "upper"
        self.work = self.base / "work"
        self.mountpoint = self.base / "merged"
        for directory in (self.upper, self.work, self.mountpoint):
            directory.mkdir(parents=True, exist_ok=True)

    def _mount_root(self) -> str:
        return (f'mount -t overlay overlay -o lowerdir=/,upperdir={shlex.quote(str(self.upper))},'
                f'workdir={shlex.quote(str(self.work))} "$M"\n'
                'mount -t tmpfs tmpfs "$M/tmp"')

    def path(self, inside: str) -> Path:
        return self.upper / inside.lstrip("/")


class DebootstrapRoot(_Root):
    def __init__(self, base: Path, packages: Path):
        super().__init__(base, packages)
        self.mountpoint = self.base / "root"

    def create(self, suite: str = "bookworm", mirror: str = "http://deb.debian.org/debian",
               arch: str | None = None) -> None:
        """`arch` other than the machine's runs under qemu-user-static (binfmt_misc must be enabled)."""
        extra = [f"--arch={arch}"] if arch else []
        subprocess.run(["debootstrap", "--variant=minbase", *extra, suite, str(self.mountpoint), mirror],
                       check=True, capture_output=True, timeout=1800)
        shutil.copy2("/etc/resolv.conf", self.mountpoint / "etc" / "resolv.conf")

    def _mount_root(self) -> str:
        return 'mount --bind "$M" "$M"\nmount -t tmpfs tmpfs "$M/tmp"'

    def path(self, inside: str) -> Path:
        return self.mountpoint / inside.lstrip("/")


def serve_and_check(root: _Root, start_timeout: float = 30) -> dict:
    """Run the installed gatewayd as its service user for a moment; return /healthz."""
    runfile = root.path("/var/lib/gatewayd/run.json")
    runfile.unlink(missing_ok=True)
    proc = root.start("/usr/bin/gatewayd", "serve", "--config", "/etc/gatewayd/gatewayd.toml",
                      "--state-dir", "/var/lib/gatewayd", "--host", "127.0.0.1", "--port", "0",
                      "--udp-port", "0", user="gatewayd")
    try:
        deadline = time.monotonic() + start_timeout
        while not runfile.exists():  # the runfile is written once every port is bound
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            assert time.monotonic() < deadline, "the installed gatewayd did not start"
            time.sleep(0.05)
        info = json.loads(runfile.read_text())
        health = httpx.get(f"http://127.0.0.1:{info['http_port']}/healthz", timeout=10)
        assert health.status_code == 200, health.text
        subprocess.run(["kill", "-TERM", str(info["pid"])], check=True)
        assert proc.wait(15) == 0, proc.stdout.read().decode(errors="replace")
        return health.json()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)

"""Opt-in (GATEWAYD_TEST_ARM64=1, about ten minutes, needs root, debootstrap, Debian's mirror and
qemu-user-static with binfmt_misc enabled): the arm64 package, built on this machine, installed into
a minimal arm64 Debian bookworm and run there under emulation, as on a Raspberry Pi."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.packaging.rootfs import DebootstrapRoot, available, serve_and_check

BINFMT = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("GATEWAYD_TEST_ARM64") != "1",
                       reason="set GATEWAYD_TEST_ARM64=1 to run the arm64 package under qemu"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="apt-get install debootstrap"),
    pytest.mark.skipif(not (BINFMT.exists() and "enabled" in BINFMT.read_text()),
                       reason="apt-get install qemu-user-static binfmt-support (binfmt_misc for aarch64)"),
    pytest.mark.skipif(available() is not None, reason=f"no throwaway root here: {available()}"),
]


def test_arm64_package_runs_on_arm64_debian(tmp_path):
    sys.path.insert(0, str(ROOT / "packaging"))
    import build_deb

    packages = tmp_path / "pkg"
    deb = build_deb.build("arm64", packages, compression="gzip")
    root = DebootstrapRoot(tmp_path / "bookworm-arm64", packages)
    root.create(arch="arm64")
    assert root.run("uname", "-m").stdout.strip() == "aarch64"
    root.run("apt-get", "update", timeout=900)
    root.run("apt-get", "install", "-y", "--no-install-recommends", f"/tmp/pkg/{deb.name}", timeout=1800)
    assert root.run("gatewayd", "--version").stdout.strip() == f"gatewayd {build_deb.project_version()}"
    assert "valid" in root.run("gatewayd", "config", "check").stdout
    native = root.run("/opt/gatewayd/bin/python3", "-c",
                      "import orjson, markupsafe._speedups, _cffi_backend\n"
                      "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
                      "print(len(AESGCM(bytes(32)).encrypt(bytes(12), b'x', b'')))")
    assert native.stdout.strip() == "17"
    health = serve_and_check(root, start_timeout=180)
    assert health["status"] == "ok"

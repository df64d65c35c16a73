"""Opt-in (GATEWAYD_TEST_DEBOOTSTRAP=1, a few minutes, needs root, debootstrap and Debian's mirror):
the amd64 package in a minimal Debian bookworm made by debootstrap, where nothing but its Depends
is installed. apt resolves python3.11 from the mirror; then the same checks as the overlay test."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.packaging.rootfs import DebootstrapRoot, available, serve_and_check

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("GATEWAYD_TEST_DEBOOTSTRAP") != "1",
                       reason="set GATEWAYD_TEST_DEBOOTSTRAP=1 to build a Debian root with debootstrap"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="apt-get install debootstrap"),
    pytest.mark.skipif(available() is not None, reason=f"no throwaway root here: {available()}"),
]


def test_install_into_a_fresh_debian_bookworm(tmp_path):
    import sys

    from tests.conftest import ROOT

    sys.path.insert(0, str(ROOT / "packaging"))
    import build_deb

    packages = tmp_path / "pkg"
    deb = build_deb.build("amd64", packages, compression="gzip")
    root = DebootstrapRoot(tmp_path / "bookworm", packages)
    root.create()
    root.run("apt-get", "update", timeout=600)
    install = root.run("apt-get", "install", "-y", "--no-install-recommends", f"/tmp/pkg/{deb.name}", timeout=900)
    assert "Setting up gatewayd" in install.stdout
    assert root.run("gatewayd", "--version").stdout.strip() == f"gatewayd {build_deb.project_version()}"
    assert "valid" in root.run("gatewayd", "config", "check").stdout
    enabled = root.sh("readlink /etc/systemd/system/multi-user.target.wants/gatewayd.service").stdout.strip()
    assert enabled == "/lib/systemd/system/gatewayd.service"
    health = serve_and_check(root)
    assert health["status"] == "ok"
    root.run("dpkg", "-P", "gatewayd")
    assert not root.path("/var/lib/gatewayd").exists() and not root.path("/opt/gatewayd").exists()

"""The .deb for real: built from the lock, inspected with dpkg-deb, installed, upgraded, removed and
purged in a throwaway root (an overlay of this machine's root), with a short serve + /healthz."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.packaging.rootfs import OverlayRoot, available, serve_and_check

sys.path.insert(0, str(ROOT / "packaging"))
import build_deb  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")

VERSION = build_deb.project_version()


@pytest.fixture(scope="module")
def debs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    # gzip: several times faster to build than the release's xz, and dpkg reads both alike.
    wheel = build_deb.build_wheel(out / "wheel")
    return {arch: build_deb.build(arch, out, compression="gzip", wheel=wheel) for arch in ("amd64", "arm64")}


def _dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], check=True, capture_output=True, text=True).stdout


def _field(deb: Path, name: str) -> str:
    return _dpkg_deb("--field", str(deb), name).strip()


def test_lock_pins_every_dependency_with_hashes():
    import tomllib

    lock = (ROOT / "packaging" / "requirements.lock").read_text()
    pins = {}
    for block in re.split(r"\n(?=[a-z0-9])", lock):
        match = re.match(r"([a-z0-9][a-z0-9._-]*)==(\S+)", block)
        if match:
            pins.setdefault(match.group(1), []).append(len(re.findall(r"--hash=sha256:[0-9a-f]{64}", block)))
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in dependencies:
        if "python_version<'3.11'" in dependency.replace(" ", ""):
            continue
        name = re.match(r"[A-Za-z0-9._-]+", dependency).group(0).lower().replace("_", "-")
        assert name in pins, f"{name} (pyproject) is not pinned in requirements.lock: run packaging/lock.sh"
    assert all(count >= 1 for counts in pins.values() for count in counts), "a pin without a hash"


def test_package_metadata_and_layout(debs):
    for arch, deb in debs.items():
        assert deb.name == f"gatewayd_{VERSION}_{arch}.deb"
        assert _field(deb, "Package") == "gatewayd"
        assert _field(deb, "Architecture") == arch
        assert _field(deb, "Version") == VERSION
        depends = _field(deb, "Depends")
        assert "python3.11" in depends and "libc6 (>= 2." in depends
        info = _dpkg_deb("--info", str(deb))
        for script in ("postinst", "prerm", "postrm", "conffiles", "md5sums"):
            assert script in info
        control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], check=True, capture_output=True).stdout
        listing = subprocess.run(["tar", "-tv"], input=control, check=True, capture_output=True).stdout.decode()
        assert re.search(r"-rwxr-xr-x root/root .* \./postinst", listing), listing
        contents = _dpkg_deb("--contents", str(deb))
        for expected in ("./etc/gatewayd/gatewayd.toml", "./lib/systemd/system/gatewayd.service",
                         "./lib/systemd/system/gatewayd.socket", "./opt/gatewayd/pyvenv.cfg",
                         "./usr/share/doc/gatewayd/operations.md",
                         "./opt/gatewayd/lib/python3.11/site-packages/gatewayd/cli/main.py",
                         "./opt/gatewayd/lib/python3.11/site-packages/trio/__init__.py"):
            assert expected in contents, f"{expected} missing from {deb.name}"
        assert "./usr/bin/gatewayd -> /opt/gatewayd/bin/gatewayd" in contents
        assert "./opt/gatewayd/bin/python3 -> /usr/bin/python3.11" in contents
        for line in contents.splitlines():
            assert " root/root " in line, f"not owned by root: {line}"
        assert "__pycache__" not in contents and "site-packages/bin/" not in contents


def test_compiled_modules_match_the_architecture(debs, tmp_path):
    machines = {"amd64": 62, "arm64": 183}
    for arch, deb in debs.items():
        tree = tmp_path / arch
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        modules = [p for p in tree.rglob("*.so") if p.read_bytes()[:4] == b"\x7fELF"]
        names = {p.name.split(".")[0] for p in modules}
        assert {"_rust", "orjson", "_cffi_backend"} <= names, names
        for module in modules:
            assert int.from_bytes(module.read_bytes()[18:20], "little") == machines[arch], module


def _journal_files(root: OverlayRoot) -> dict[str, str]:
    journal = root.path("/var/lib/gatewayd/journal")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(journal.glob("segment-*"))}


def _repack(deb: Path, version: str, out: Path) -> Path:
    tree = out / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    control.write_text(re.sub(r"^Version: .*$", f"Version: {version}", control.read_text(), flags=re.M))
    target = out / f"gatewayd_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(tree), str(target)], check=True,
                   capture_output=True)
    return target


@pytest.mark.skipif(available() is not None, reason=f"no throwaway root here: {available()}")
def test_install_serve_upgrade_remove_purge(debs, tmp_path):
    packages = tmp_path / "pkg"
    packages.mkdir()
    shutil.copy2(debs["amd64"], packages / debs["amd64"].name)
    upgrade = _repack(debs["amd64"], f"{VERSION}+upgrade1", tmp_path)
    shutil.copy2(upgrade, packages / upgrade.name)
    root = OverlayRoot(tmp_path / "root", packages)

    # Install: user, state directory, service enabled, the commands work.
    root.run("dpkg", "-i", f"/tmp/pkg/{debs['amd64'].name}")
    assert "gatewayd:" in root.path("/etc/passwd").read_text()
    state = root.sh("stat -c '%U %a' /var/lib/gatewayd; readlink /etc/systemd/system/multi-user.target.wants/"
                    "gatewayd.service; test ! -e /etc/systemd/system/sockets.target.wants/gatewayd.socket "
                    "&& echo socket-off").stdout.split("\n")
    assert state[:3] == ["gatewayd 700", "/lib/systemd/system/gatewayd.service", "socket-off"], state
    assert root.run("gatewayd", "--version").stdout.strip() == f"gatewayd {VERSION}"
    check = root.run("gatewayd", "config", "check")
    assert "/etc/gatewayd/gatewayd.toml: valid" in check.stdout
    sample = subprocess.run([sys.executable, "-m", "gatewayd", "config", "sample"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    assert root.path("/etc/gatewayd/gatewayd.toml").read_text() == sample
    if shutil.which("systemd-analyze"):
        verify = root.run("systemd-analyze", "verify", "/lib/systemd/system/gatewayd.service",
                          "/lib/systemd/system/gatewayd.socket", check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr

    first = serve_and_check(root)
    assert first["status"] == "ok" and first["version"] == VERSION
    journal_before = _journal_files(root)
    assert journal_before

    # Upgrade: the operator's configuration and the state are kept, the new version runs.
    config = root.path("/etc/gatewayd/gatewayd.toml")
    config.write_text(config.read_text() + "\n# edited by the operator\n")
    root.run("dpkg", "-i", f"/tmp/pkg/{upgrade.name}")
    assert config.read_text().endswith("# edited by the operator\n")
    assert _journal_files(root) == journal_before
    assert f"{VERSION}+upgrade1" in root.run("dpkg-query", "-W", "gatewayd").stdout
    second = serve_and_check(root)
    assert second["journal_seq"] > first["journal_seq"], "the state did not survive the upgrade"

    # Remove keeps data and configuration; purge removes them.
    root.run("dpkg", "-r", "gatewayd")
    after_remove = root.sh("for p in /opt/gatewayd /usr/bin/gatewayd /var/lib/gatewayd/journal "
                           "/etc/gatewayd/gatewayd.toml; do test -e $p && echo $p; done; true").stdout.split()
    assert after_remove == ["/var/lib/gatewayd/journal", "/etc/gatewayd/gatewayd.toml"]
    root.run("dpkg", "-P", "gatewayd")
    after_purge = root.sh("for p in /var/lib/gatewayd /etc/gatewayd /etc/systemd/system/gatewayd.service "
                          "/etc/systemd/system/multi-user.target.wants/gatewayd.service; do "
                          "test -e $p -o -L $p && echo $p; done; true").stdout.split()
    assert after_purge == []

"""Build gatewayd_<version>_<arch>.deb for Debian bookworm / Raspberry Pi OS (amd64 or arm64).

    .venv/bin/python packaging/build_deb.py --arch arm64 --out dist/

The package holds a self-contained virtual environment in /opt/gatewayd: Debian's python3.X as the
interpreter, every library from packaging/requirements.lock (pinned, each file's sha256 checked) as
binary wheels for the target architecture, so an arm64 package builds on an amd64 machine without
a compiler or an emulator. Needs: dpkg-deb, pip, and the package index (for the wheels).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "packaging"
LOCK = HERE / "requirements.lock"
APP = Path("opt/gatewayd")
UNIT_DIR = Path("lib/systemd/system")
DOCS = ("README.md", "docs/operations.md", "docs/configuration.md", "docs/journal.md")
MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
DEFAULT_MAINTAINER = "gatewayd maintainers <gatewayd@localhost>"


class BuildError(RuntimeError):
    pass


def project_version() -> str:
    text = (ROOT / "gatewayd" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not match:
        raise BuildError("no __version__ in gatewayd/__init__.py")
    return match.group(1)


def platform_tags(arch: str, glibc: str) -> list[str]:
    """manylinux tags the target's glibc accepts, newest first (pip wants them spelled out)."""
    machine = MACHINES[arch]
    major, minor = (int(x) for x in glibc.split("."))
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]
    return tags + [f"manylinux2014_{machine}"]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)
    except FileNotFoundError:
        raise BuildError(f"{cmd[0]} is needed to build the package and was not found") from None
    except subprocess.CalledProcessError as exc:
        detail = "\n".join((exc.stdout or "").splitlines()[-15:] + (exc.stderr or "").splitlines()[-15:])
        raise BuildError(f"{' '.join(cmd[:4])} ... failed:\n{detail}") from None


def build_wheel(out: Path) -> Path:
    """gatewayd's own wheel (pure Python, the same for every architecture), built from a copy of the
    sources so that the build never writes into the tree."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gatewayd-src-") as tmp:
        source = Path(tmp)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, source / name)
        shutil.copytree(ROOT / "gatewayd", source / "gatewayd",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)])
    (wheel,) = out.glob("gatewayd-*.whl")
    return wheel


def install_libraries(site: Path, arch: str, python: str, glibc: str, wheel: Path) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--only-binary=:all:",
           "--python-version", python, "--implementation", "cp", "--abi", f"cp{python.replace('.', '')}",
           "--abi", "abi3", "--abi", "none", "--target", str(site)]
    for tag in platform_tags(arch, glibc):
        pip += ["--platform", tag]
    run(pip + ["--require-hashes", "-r", str(LOCK)])
    run(pip + [str(wheel)])
    shutil.rmtree(site / "bin", ignore_errors=True)  # their scripts name the build machine's python


def required_glibc(site: Path) -> str:
    """The newest glibc any installed wheel was built for (libc6's minimum version)."""
    best = (2, 17)
    for wheel_file in site.glob("*.dist-info/WHEEL"):
        for line in wheel_file.read_text().splitlines():
            match = re.match(r"Tag: .*-manylinux_(\d+)_(\d+)_", line)
            if match:
                best = max(best, (int(match.group(1)), int(match.group(2))))
    return f"{best[0]}.{best[1]}"


def check_architecture(site: Path, arch: str) -> None:
    """Every compiled module must be for the target: a wrong wheel would only fail on the device."""
    wanted = {"amd64": 62, "arm64": 183}[arch]  # ELF e_machine: EM_X86_64, EM_AARCH64
    for path in site.rglob("*.so*"):
        header = path.read_bytes()[:20]
        if header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") != wanted:
            raise BuildError(f"{path.relative_to(site)} is not built for {arch}")


def write_venv(app: Path, python: str) -> None:
    """A virtual environment laid out by hand: it names the target's interpreter, not ours."""
    (app / "bin").mkdir(parents=True, exist_ok=True)
    (app / "pyvenv.cfg").write_text(f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {python}\n")
    os.symlink(f"/usr/bin/python{python}", app / "bin" / "python3")
    os.symlink("python3", app / "bin" / "python")
    launcher = app / "bin" / "gatewayd"
    launcher.write_text("#!/opt/gatewayd/bin/python3\nimport sys\n\nfrom gatewayd.cli.main import main\n\n"
                        "sys.exit(main())\n")
    launcher.chmod(0o755)


def sample_config() -> str:
    result = run([sys.executable, "-m", "gatewayd", "config", "sample"], cwd=ROOT)
    return result.stdout


def normalise(tree: Path, epoch: int) -> None:
    """Root-owned modes, one timestamp: the same sources give the same files."""
    for path in sorted(tree.rglob("*"), reverse=True):
        if path.is_symlink():
            os.utime(path, (epoch, epoch), follow_symlinks=False)
            continue
        if path.is_dir():
            path.chmod(0o755)
        elif path.stat().st_mode & 0o111:
            path.chmod(0o755)
        else:
            path.chmod(0o644)
        os.utime(path, (epoch, epoch))


def installed_size_kib(tree: Path) -> int:
    total = 0
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += (path.stat().st_size + 1023) // 1024
        else:
            total += 1
    return total


def write_control(tree: Path, *, version: str, arch: str, python: str, glibc: str, maintainer: str) -> None:
    control_dir = tree / "DEBIAN"
    control_dir.mkdir()
    sums = []
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()):
        if control_dir in path.parents:
            continue
        sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.relative_to(tree)}\n")
    size = installed_size_kib(tree)
    control = (HERE / "debian" / "control.in").read_text()
    for key, value in {"VERSION": version, "ARCH": arch, "PYTHON": python, "GLIBC": glibc,
                       "MAINTAINER": maintainer, "INSTALLED_SIZE": str(size)}.items():
        control = control.replace(f"@{key}@", value)
    (control_dir / "control").write_text(control)
    (control_dir / "md5sums").write_text("".join(sums))
    (control_dir / "conffiles").write_text("/etc/gatewayd/gatewayd.toml\n")
    for script in ("postinst", "prerm", "postrm"):
        shutil.copy2(HERE / "debian" / script, control_dir / script)
        (control_dir / script).chmod(0o755)


def source_date_epoch() -> int:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True,
                             text=True, timeout=10)
        return int(out.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


def build(arch: str, out: Path, *, version: str | None = None, python: str = "3.11", glibc: str = "2.36",
          maintainer: str | None = None, compression: str = "xz", wheel: Path | None = None) -> Path:
    """Build one package into `out`; `wheel` is gatewayd's wheel when already built (see build_wheel)."""
    if arch not in MACHINES:
        raise BuildError(f"unsupported architecture {arch!r} (amd64 or arm64)")
    if shutil.which("dpkg-deb") is None:
        raise BuildError("dpkg-deb is needed (apt-get install dpkg)")
    version = version or project_version()
    maintainer = maintainer or os.environ.get("DEB_MAINTAINER") or DEFAULT_MAINTAINER
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gatewayd-deb-") as tmp:
        work = Path(tmp)
        tree = work / "root"
        app = tree / APP
        site = app / "lib" / f"python{python}" / "site-packages"
        site.mkdir(parents=True)
        install_libraries(site, arch, python, glibc, wheel or build_wheel(work / "wheel"))
        check_architecture(site, arch)
        write_venv(app, python)
        (tree / "usr/bin").mkdir(parents=True)
        os.symlink("/opt/gatewayd/bin/gatewayd", tree / "usr/bin/gatewayd")
        (tree / "etc/gatewayd").mkdir(parents=True)
        (tree / "etc/gatewayd/gatewayd.toml").write_text(sample_config())
        (tree / UNIT_DIR).mkdir(parents=True)
        for unit in ("gatewayd.service", "gatewayd.socket"):
            shutil.copy2(ROOT / "systemd" / unit, tree / UNIT_DIR / unit)
        docs = tree / "usr/share/doc/gatewayd"
        docs.mkdir(parents=True)
        for doc in DOCS:
            shutil.copy2(ROOT / doc, docs / Path(doc).name)
        shutil.copy2(HERE / "debian" / "copyright", docs / "copyright")
        normalise(tree, source_date_epoch())
        write_control(tree, version=version, arch=arch, python=python, glibc=required_glibc(site),
                      maintainer=maintainer)
        target = out / f"gatewayd_{version}_{arch}.deb"
        run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(tree), str(target)],
            env={**os.environ, "SOURCE_DATE_EPOCH": str(source_date_epoch())})
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=sorted(MACHINES),
                        help="target architecture (repeat for several; default: amd64 and arm64)")
    parser.add_argument("--out", default=str(ROOT / "dist"), help="where the .deb files go (default dist/)")
    parser.add_argument("--version", help="package version (default: gatewayd's own)")
    parser.add_argument("--python", default="3.11", help="the target's python3 version (bookworm: 3.11)")
    parser.add_argument("--glibc", default="2.36", help="the target's glibc version (bookworm: 2.36)")
    parser.add_argument("--compression", default="xz", choices=("xz", "gzip", "zstd", "none"),
                        help="dpkg-deb compression (gzip builds much faster, xz is smaller)")
    ns = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="gatewayd-wheel-") as tmp:
            wheel = build_wheel(Path(tmp))
            for arch in ns.arch or ["amd64", "arm64"]:
                path = build(arch, Path(ns.out), version=ns.version, python=ns.python, glibc=ns.glibc,
                             compression=ns.compression, wheel=wheel)
                print(f"{path} ({path.stat().st_size // 1024} KiB)")
    except BuildError as exc:
        print(f"build_deb: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

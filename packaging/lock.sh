#!/bin/sh
# Regenerates packaging/requirements.lock from pyproject.toml's runtime dependencies: every package
# pinned, each pin with the sha256 of every file the index has for it, so the same lock serves the
# amd64 and the arm64 build. Run it after changing a dependency, then rebuild and test the package.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PY_VERSION=${PY_VERSION:-3.11}
TOOLS=$(mktemp -d)
trap 'rm -rf "$TOOLS"' EXIT INT TERM
python3 -m venv "$TOOLS/venv"
"$TOOLS/venv/bin/pip" install --quiet uv
cd "$ROOT"
"$TOOLS/venv/bin/uv" pip compile pyproject.toml --universal --python-version "$PY_VERSION" \
    --generate-hashes --custom-compile-command "packaging/lock.sh" --quiet -o packaging/requirements.lock
echo "packaging/requirements.lock: $(grep -c '^[a-z0-9]' packaging/requirements.lock) pinned packages"

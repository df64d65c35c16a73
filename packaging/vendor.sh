#!/bin/sh
# Vendored browser libraries of the dashboard, fetched from npm at a pinned version and checked
# against the registry's integrity hash, then copied into gatewayd/web/static/vendor/ (committed, so
# the package and the dashboard work offline and without npm). Run: make vendor
# Check the committed copy: VENDOR_DEST=$(mktemp -d) sh packaging/vendor.sh, then diff -r.
set -eu

UPLOT_VERSION=1.6.32
UPLOT_INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==

root=$(cd "$(dirname "$0")/.." && pwd)
dest="${VENDOR_DEST:-$root/gatewayd/web/static/vendor}"  # VENDOR_DEST: elsewhere, e.g. to compare
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null
tarball="uplot-$UPLOT_VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$UPLOT_INTEGRITY" ]; then
    echo "uplot $UPLOT_VERSION: integrity $actual, expected $UPLOT_INTEGRITY" >&2
    exit 1
fi
tar xzf "$tarball"
mkdir -p "$dest"
cp package/dist/uPlot.iife.min.js "$dest/uplot.min.js"
cp package/dist/uPlot.min.css "$dest/uplot.min.css"
cp package/LICENSE "$dest/uplot.LICENSE"
echo "uplot $UPLOT_VERSION -> $dest"

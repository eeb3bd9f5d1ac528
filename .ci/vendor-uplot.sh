#!/usr/bin/env bash
# Vendor uPlot (the metrics charts) from npm into static/vendor/uplot/. Pinned version and
# tarball digest: a different tarball fails. `make vendor` (and `make up`) run it; no CDN.
set -euo pipefail
VERSION=1.6.32
INTEGRITY="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/static/vendor/uplot"
if [[ -f "$DEST/VERSION" && "$(cat "$DEST/VERSION")" == "$VERSION" ]]; then
  exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "uplot@$VERSION" >/dev/null)
TARBALL="$WORK/uplot-$VERSION.tgz"
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [[ "$ACTUAL" != "$INTEGRITY" ]]; then
  echo "uplot-$VERSION.tgz digest $ACTUAL does not match the pinned $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$TARBALL" -C "$WORK"
mkdir -p "$DEST"
cp "$WORK/package/dist/uPlot.iife.min.js" "$WORK/package/dist/uPlot.min.css" "$WORK/package/LICENSE" "$DEST/"
echo "$VERSION" > "$DEST/VERSION"
echo "uPlot $VERSION vendored into static/vendor/uplot/"

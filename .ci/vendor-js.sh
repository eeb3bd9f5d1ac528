#!/usr/bin/env bash
# The browser console's libraries (noVNC, xterm.js) from npm into static/vendor/, pinned by
# .ci/js/package.json + package-lock.json (npm ci: exact versions and integrity hashes).
# The result is committed, so `make up` needs neither npm nor the network.
#   bash .ci/vendor-js.sh          refresh static/vendor/ (after changing the pins; commit it)
#   bash .ci/vendor-js.sh --check  fail when static/vendor/ is not exactly the pinned packages (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp .ci/js/package.json .ci/js/package-lock.json "$work/"
(cd "$work" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
modules=$work/node_modules
out=$work/vendor
mkdir -p "$out/novnc" "$out/xterm"
cp -r "$modules/@novnc/novnc/core" "$modules/@novnc/novnc/vendor" "$modules/@novnc/novnc/LICENSE.txt" "$out/novnc/"
cp "$modules/@xterm/xterm/lib/xterm.js" "$modules/@xterm/xterm/css/xterm.css" "$modules/@xterm/xterm/LICENSE" "$out/xterm/"
cp "$modules/@xterm/addon-fit/lib/addon-fit.js" "$out/xterm/"
# Django's manifest storage follows sourceMappingURL comments; the maps are not shipped.
sed -i '/^\/\/# sourceMappingURL=/d' "$out"/xterm/*.js
(cd "$work" && node -e 'const l=require("./package-lock.json").packages;for(const[k,v]of Object.entries(l))if(k)console.log(k.replace("node_modules/",""),v.version,v.license)') \
  > "$out/VERSIONS"

if [[ "${1:-}" == "--check" ]]; then
  if ! diff -r "$out" static/vendor >/dev/null; then
    diff -rq "$out" static/vendor || true
    echo "static/vendor/ differs from .ci/js/package-lock.json: run bash .ci/vendor-js.sh and commit" >&2
    exit 1
  fi
  echo "static/vendor/ matches the pinned npm packages"
else
  rm -rf static/vendor
  cp -r "$out" static/vendor
  echo "static/vendor/ refreshed:"
  cat static/vendor/VERSIONS
fi

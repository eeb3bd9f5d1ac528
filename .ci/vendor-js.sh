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

# Only its own entries: static/vendor/ also holds what other scripts vendor (uplot/).
OWN=(novnc xterm VERSIONS)
if [[ "${1:-}" == "--check" ]]; then
  for entry in "${OWN[@]}"; do
    if ! diff -r "$out/$entry" "static/vendor/$entry" >/dev/null 2>&1; then
      diff -rq "$out/$entry" "static/vendor/$entry" || true
      echo "static/vendor/$entry differs from .ci/js/package-lock.json: run bash .ci/vendor-js.sh and commit" >&2
      exit 1
    fi
  done
  echo "static/vendor/ matches the pinned npm packages"
else
  mkdir -p static/vendor
  for entry in "${OWN[@]}"; do
    rm -rf "static/vendor/$entry"
    cp -r "$out/$entry" "static/vendor/$entry"
  done
  echo "static/vendor/ refreshed:"
  cat static/vendor/VERSIONS
fi

#!/usr/bin/env bash
# System tools the test suite needs, installed from Debian's packages when absent:
#   chromium                   the browser tests (tests/browser/) drive /usr/bin/chromium with Playwright.
# Idempotent: a tool already there is not installed again. Without root or apt the
# script says what is missing and exits 0: the tests that need a tool then fail
# with that reason (they never skip).
set -uo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} = 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "WARNING: tests need ${missing[*]} (apt-get install ${missing[*]}); not root or no apt here." >&2
  exit 0
fi
echo "Installing system packages for the tests: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
status=$?
[ $status = 0 ] || echo "WARNING: apt-get install ${missing[*]} failed (status $status)." >&2
exit 0

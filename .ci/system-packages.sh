#!/usr/bin/env bash
# System tools the test suite needs, installed from Debian's packages when absent:
#   systemd-analyze (systemd)  verifies deploy/systemd/*.
#   nginx                      checks deploy/nginx/* with `nginx -t` (never started here).
#   chromium                   the browser tests (tests/browser/) drive /usr/bin/chromium with Playwright.
#   fonts-noto-core            Noto Sans + Noto Sans Devanagari, embedded in GST PDFs (billing/documents/pdf.py).
#   pdns-server, pdns-backend-sqlite3
#                              PowerDNS Authoritative for the reverse-DNS tests (tests/fixtures/powerdns.py
#                              starts its own instance on loopback; the machine-wide service is never used).
# Idempotent. Without root or apt the script says what is missing and exits 0: the
# tests that need a tool then fail with that reason (they never skip).
set -uo pipefail

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf ] || missing+=(fonts-noto-core)
[ -x /usr/sbin/pdns_server ] || missing+=(pdns-server)
ls /usr/lib/*/pdns/libgsqlite3backend.so >/dev/null 2>&1 || missing+=(pdns-backend-sqlite3)
[ ${#missing[@]} = 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "WARNING: cannot install ${missing[*]} (needs root and apt-get); tests needing them will fail." >&2
  exit 0
fi
echo "Installing system packages for the tests: ${missing[*]}"
# Install without starting services (nginx must not take port 80, pdns port 53, on a CI box).
added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
status=$?
[ $added_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
[ $status = 0 ] || echo "WARNING: apt-get install ${missing[*]} failed (status $status)." >&2
exit 0

#!/usr/bin/env bash
# The OpenStack driver's real test tier: nova's own functional-test stack (API, conductor,
# scheduler, computes with the fake virt driver, placement) served over HTTP by
# tests/novastack/serve_nova.py. nova pins its own dependencies, so it gets a virtualenv of
# its own inside the repository's ignored area (var/nova-venv, pip cache in var/pip-cache).
#
# Idempotent: a stamp file records what is installed; a re-run only checks it (~1 s).
# A fresh install takes about a minute. NOVA_VENV moves the venv (keep it inside var/).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
NOVA_VERSION="34.0.0"
PLACEMENT_VERSION="16.0.0"
VENV="${NOVA_VENV:-var/nova-venv}"
STAMP="$VENV/.installed-nova-$NOVA_VERSION-placement-$PLACEMENT_VERSION"

if [ -f "$STAMP" ]; then
  echo "nova test stack: $VENV is ready (nova $NOVA_VERSION)."
  exit 0
fi

started=$(date +%s)
echo "nova test stack: installing nova $NOVA_VERSION and placement $PLACEMENT_VERSION into $VENV ..."
mkdir -p var
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
export PIP_CACHE_DIR="$PWD/var/pip-cache" PIP_DISABLE_PIP_VERSION_CHECK=1
"$VPY" -m pip install --quiet --upgrade pip setuptools wheel
"$VPY" -m pip install --quiet \
  "nova==$NOVA_VERSION" "openstack-placement==$PLACEMENT_VERSION" \
  wsgi-intercept oslotest requests-mock testtools fixtures 'SQLAlchemy<2.1'

# nova's WSGI loader looks for etc/nova/api-paste.ini relative to its source tree root, which
# for an installed wheel is site-packages/..; the wheel puts its data files in <venv>/etc/nova.
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [ ! -e "$SITE/etc/nova/api-paste.ini" ]; then
  mkdir -p "$SITE/etc"
  ln -sfn "$(cd "$VENV" && pwd)/etc/nova" "$SITE/etc/nova"
fi
test -e "$SITE/etc/nova/api-paste.ini" || { echo "ERROR: nova's api-paste.ini is missing in $VENV" >&2; exit 1; }

# nova.tests.functional first: it decides native threading before anything imports eventlet.
OS_NOVA_DISABLE_EVENTLET_PATCHING=true "$VPY" -W ignore -c '
import nova.tests.functional
import nova.tests.fixtures, nova.tests.functional.integrated_helpers, placement'
touch "$STAMP"
echo "nova test stack: ready in $(( $(date +%s) - started ))s."

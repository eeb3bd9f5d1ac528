#!/usr/bin/env bash
# The OpenStack driver's network tests against real API servers: Keystone and neutron-server
# (ML2 with no mechanism driver and no agents, the router service plugin, SQLite), started by
# tests/fixtures/neutronstack.py from tests/neutronstack/. They pin their own dependencies, so
# they get a virtualenv of their own in the repository's ignored area (var/neutron-venv).
#
# Idempotent: a stamp file records what is installed; a re-run only checks it (~1 s).
# A fresh install takes several minutes (about 300 packages). NEUTRON_VENV moves the venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
NEUTRON_VERSION="29.0.0"
KEYSTONE_VERSION="30.0.0"
VENV="${NEUTRON_VENV:-var/neutron-venv}"
STAMP="$VENV/.installed-neutron-$NEUTRON_VERSION-keystone-$KEYSTONE_VERSION"

if [ -f "$STAMP" ]; then
  echo "neutron test stack: $VENV is ready (neutron $NEUTRON_VERSION, keystone $KEYSTONE_VERSION)."
  exit 0
fi

started=$(date +%s)
echo "neutron test stack: installing neutron $NEUTRON_VERSION and keystone $KEYSTONE_VERSION into $VENV ..."
mkdir -p var
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
export PIP_CACHE_DIR="$PWD/var/pip-cache" PIP_DISABLE_PIP_VERSION_CHECK=1
"$VPY" -m pip install --quiet "neutron==$NEUTRON_VERSION" "keystone==$KEYSTONE_VERSION"
test -e "$VENV/etc/neutron/api-paste.ini" || { echo "ERROR: neutron's api-paste.ini is missing in $VENV" >&2; exit 1; }
"$VPY" -W ignore -c 'import keystone.server.wsgi, neutron.server.api, neutron.db.migration.models.head'
touch "$STAMP"
echo "neutron test stack: ready in $(( $(date +%s) - started ))s."

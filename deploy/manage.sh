#!/usr/bin/env bash
# manage.py with the production environment, as the service user:
#
#   sudo /opt/controlplane/app/deploy/manage.sh engine_status
#   sudo /opt/controlplane/app/deploy/manage.sh operation_retry 4211
#
# The environment file (CONTROLPLANE_ENV_FILE, default /etc/controlplane/controlplane.env)
# is read the way systemd's EnvironmentFile= reads it (KEY=VALUE lines, optional quotes),
# never sourced as shell. Run as root it switches to the 'controlplane' user, unless
# CONTROLPLANE_RUN_AS_CALLER=1 (install.sh's collectstatic writes root-owned files).
set -euo pipefail
APP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CONTROLPLANE_VENV:-$(dirname "$APP_DIR")/venv}
ENV_FILE=${CONTROLPLANE_ENV_FILE:-/etc/controlplane/controlplane.env}
SERVICE_USER=controlplane

[ -r "$ENV_FILE" ] || { echo "manage.sh: cannot read $ENV_FILE (run as root?)" >&2; exit 1; }
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*|';'*) continue ;; esac
  key=${line%%=*} value=${line#*=}
  case "$value" in \"*\") value=${value:1:-1} ;; \'*\') value=${value:1:-1} ;; esac
  export "$key=$value"
done < "$ENV_FILE"

cd "$APP_DIR"
if [ "$(id -u)" = 0 ] && [ "${CONTROLPLANE_RUN_AS_CALLER:-0}" != 1 ] && getent passwd "$SERVICE_USER" >/dev/null; then
  exec runuser -u "$SERVICE_USER" -- "$VENV/bin/python" manage.py "$@"
fi
exec "$VENV/bin/python" manage.py "$@"

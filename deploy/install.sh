#!/usr/bin/env bash
# Install or upgrade the control plane on Debian/Ubuntu. Idempotent: run it again
# after pulling a new version (it swaps the code, updates the virtualenv, migrates,
# collects static files, refreshes the units and restarts what was running).
#
#   sudo deploy/install.sh --hosts cloud.example.com \
#        --database-url postgres://controlplane:PW@db1:5432/controlplane \
#        --broker-url redis://redis1:6379/0
#
# Layout: code /opt/controlplane/app, virtualenv /opt/controlplane/venv, static
# files /opt/controlplane/static, state /var/lib/controlplane, configuration
# /etc/controlplane/controlplane.env (made once from deploy/controlplane.env.example,
# never overwritten), units /etc/systemd/system. docs/DEPLOYMENT.md explains each step.
#
# Scratch mode for CI and dry runs: --prefix DIR puts all of that under DIR and
# implies --no-user and --no-systemd; add --no-apt to leave the system alone.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: install.sh [options]
  --prefix DIR          install under DIR instead of / (implies --no-user --no-systemd)
  --no-apt              do not install Debian packages
  --no-user             do not create the 'controlplane' system user; run as the caller
  --no-systemd          install unit files but do not call systemctl
  --with-services       also install PostgreSQL, Redis and nginx here, with a local database
  --hosts NAMES         ALLOWED_HOSTS for a new environment file (comma-separated)
  --database-url URL    DATABASE_URL for a new environment file
  --broker-url URL      CELERY_BROKER_URL for a new environment file
  --cache-url URL       CACHE_URL for a new environment file (shared cache of the web processes)
  --workers QUEUES      worker units to enable (default: control, housekeeping + every hypervisor queue)
  --python PATH         Python 3.11+ for the virtualenv (default: python3)
  -h, --help            this text
USAGE
}

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX="" NO_APT=0 NO_USER=0 NO_SYSTEMD=0 WITH_SERVICES=0
HOSTS="" DATABASE_URL_ARG="" BROKER_URL_ARG="" CACHE_URL_ARG="" WORKERS="" PYTHON=python3
SERVICE_USER=controlplane

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2%/}; NO_USER=1; NO_SYSTEMD=1; shift ;;
    --no-apt) NO_APT=1 ;;
    --no-user) NO_USER=1 ;;
    --no-systemd) NO_SYSTEMD=1 ;;
    --with-services) WITH_SERVICES=1 ;;
    --hosts) HOSTS=$2; shift ;;
    --database-url) DATABASE_URL_ARG=$2; shift ;;
    --broker-url) BROKER_URL_ARG=$2; shift ;;
    --cache-url) CACHE_URL_ARG=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --python) PYTHON=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

ETC_DIR=$PREFIX/etc/controlplane
ENV_FILE=$ETC_DIR/controlplane.env
APP_ROOT=$PREFIX/opt/controlplane
APP_DIR=$APP_ROOT/app
VENV=$APP_ROOT/venv
STATIC_DIR=$APP_ROOT/static
STATE_DIR=$PREFIX/var/lib/controlplane
UNIT_DIR=$PREFIX/etc/systemd/system
NGINX_DIR=$PREFIX/etc/nginx/sites-available
NGINX_SNIPPETS=$PREFIX/etc/nginx/snippets

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# The production paths in units and the env example, moved under --prefix.
render() {
  sed -e "s#/opt/controlplane#${APP_ROOT}#g" -e "s#/var/lib/controlplane#${STATE_DIR}#g" \
      -e "s#/etc/controlplane#${ETC_DIR}#g" -e "s#/etc/nginx/snippets#${NGINX_SNIPPETS}#g" "$1"
}

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (or pass --prefix DIR --no-apt for a scratch install)"; }

# --- 1. System packages -------------------------------------------------------
apt_packages() {
  # fonts-noto-core: Noto Sans (with ₹) and Noto Sans Devanagari, embedded in GST PDFs.
  local wanted=(python3 python3-venv python3-pip ca-certificates fonts-noto-core)
  [ $WITH_SERVICES = 1 ] && wanted+=(postgresql redis-server nginx)
  local missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} = 0 ]; then
    say "system packages: all present"
    return
  fi
  need_root "installing ${missing[*]}"
  [ -f /etc/debian_version ] || die "not Debian/Ubuntu: install ${missing[*]} yourself and pass --no-apt"
  say "system packages: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
[ $NO_APT = 1 ] || apt_packages

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); the control plane needs Python 3.11 or newer (--python PATH)"

# --- 2. Service user and directories -----------------------------------------
if [ $NO_USER = 0 ]; then
  need_root "creating the $SERVICE_USER user"
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    say "user: creating system user $SERVICE_USER"
    useradd --system --user-group --home-dir /var/lib/controlplane --no-create-home \
      --shell /usr/sbin/nologin "$SERVICE_USER"
  else
    say "user: $SERVICE_USER exists"
  fi
  OWNER=$SERVICE_USER
else
  OWNER=$(id -un)
fi
OWNER_GROUP=$(id -gn "$OWNER")

install -d -m 0755 "$APP_ROOT" "$UNIT_DIR"
install -d -m 0750 -o "$OWNER" -g "$OWNER_GROUP" "$STATE_DIR"
install -d -m 0750 -g "$OWNER_GROUP" "$ETC_DIR"

# --- 3. Code: copy the source tree, then swap it in -----------------------------
say "code: $SRC -> $APP_DIR"
rm -rf "$APP_DIR.new" "$APP_DIR.old"
install -d -m 0755 "$APP_DIR.new"
tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./tests --exclude=./bench \
  --exclude='__pycache__' --exclude=./.pytest_cache --exclude=./.ruff_cache --exclude=./.hypothesis \
  -cf - . | tar -C "$APP_DIR.new" -xf -
chmod -R u=rwX,go=rX "$APP_DIR.new"
[ -d "$APP_DIR" ] && mv "$APP_DIR" "$APP_DIR.old"
mv "$APP_DIR.new" "$APP_DIR"
rm -rf "$APP_DIR.old"

# --- 4. Virtualenv ---------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "virtualenv: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
REQ_HASH=$(sha256sum < "$APP_DIR/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$REQ_HASH" ]; then
  say "virtualenv: installing requirements.txt"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$APP_DIR/requirements.txt"
  echo "$REQ_HASH" > "$VENV/.requirements"
else
  say "virtualenv: requirements unchanged"
fi

# --- 5. Environment file (made once, never overwritten) -------------------------
if [ -f "$ENV_FILE" ]; then
  say "environment: keeping $ENV_FILE"
  missing_keys=$(comm -23 \
    <(grep -oE '^#?[A-Z_]+=' "$APP_DIR/deploy/controlplane.env.example" | tr -d '#=' | sort -u) \
    <(grep -oE '^#?[A-Z_]+=' "$ENV_FILE" | tr -d '#=' | sort -u) | tr '\n' ' ')
  [ -z "$missing_keys" ] || say "environment: new settings in the example you may want: $missing_keys"
else
  say "environment: creating $ENV_FILE with fresh secrets"
  render "$APP_DIR/deploy/controlplane.env.example" | \
    HOSTS="$HOSTS" DATABASE_URL_ARG="$DATABASE_URL_ARG" BROKER_URL_ARG="$BROKER_URL_ARG" CACHE_URL_ARG="$CACHE_URL_ARG" "$PYTHON" -c '
import base64, os, secrets, sys
overrides = {
    "DATABASE_URL": os.environ["DATABASE_URL_ARG"],
    "CELERY_BROKER_URL": os.environ["BROKER_URL_ARG"],
    "CACHE_URL": os.environ["CACHE_URL_ARG"],
}
hosts = [h.strip() for h in os.environ["HOSTS"].split(",") if h.strip()]
if hosts:
    overrides["ALLOWED_HOSTS"] = ",".join(hosts)
    overrides["CSRF_TRUSTED_ORIGINS"] = ",".join(f"https://{h}" for h in hosts)
    overrides["SITE_URL"] = f"https://{hosts[0]}"
generate = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "FIELD_ENCRYPTION_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "METRICS_TOKEN": lambda: secrets.token_urlsafe(32),
}
for line in sys.stdin:
    key, sep, value = line.rstrip("\n").partition("=")
    if sep and not key.startswith("#"):
        if value == "__GENERATE__":
            value = generate[key]()
        elif overrides.get(key):
            value = overrides[key]
        line = f"{key}={value}\n"
    sys.stdout.write(line)
' > "$ENV_FILE.new"
  chmod 0640 "$ENV_FILE.new"
  chgrp "$OWNER_GROUP" "$ENV_FILE.new"
  mv "$ENV_FILE.new" "$ENV_FILE"
fi

# --- 6. Database and static files ----------------------------------------------
# manage.py through deploy/manage.sh: the environment file read as systemd reads it,
# as the service user (root for collectstatic, which writes under /opt).
manage() {
  local as_caller=$NO_USER
  [ "$1" = collectstatic ] && as_caller=1
  CONTROLPLANE_ENV_FILE=$ENV_FILE CONTROLPLANE_VENV=$VENV CONTROLPLANE_RUN_AS_CALLER=$as_caller \
    "$APP_DIR/deploy/manage.sh" "$@"
}

if [ $WITH_SERVICES = 1 ]; then
  need_root "--with-services"
  if grep -q '^DATABASE_URL=.*CHANGE-ME' "$ENV_FILE"; then
    password=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))')
    say "services: creating the local PostgreSQL role and database controlplane"
    runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='controlplane'" | grep -q 1 \
      || runuser -u postgres -- psql -qc "CREATE ROLE controlplane LOGIN"
    runuser -u postgres -- psql -qc "ALTER ROLE controlplane PASSWORD '$password'"
    runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname='controlplane'" | grep -q 1 \
      || runuser -u postgres -- createdb -O controlplane controlplane
    sed -i "s#^DATABASE_URL=.*#DATABASE_URL=postgres://controlplane:${password}@127.0.0.1:5432/controlplane#" "$ENV_FILE"
  fi
fi

if grep -q '^DATABASE_URL=.*CHANGE-ME' "$ENV_FILE"; then
  say "database: DATABASE_URL in $ENV_FILE is still the example; edit it and run install.sh again"
  CONFIGURED=0
else
  say "database: migrating"
  manage migrate --noinput
  CONFIGURED=1
fi
say "static files: collecting into $STATIC_DIR"
install -d -m 0755 "$STATIC_DIR"
manage collectstatic --noinput --verbosity 0
[ $NO_USER = 1 ] || chown -R "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"

# --- 7. systemd units and the nginx sample --------------------------------------
for unit in "$APP_DIR"/deploy/systemd/*; do
  target=$UNIT_DIR/$(basename "$unit")
  if ! render "$unit" | cmp -s - "$target"; then
    render "$unit" > "$target"
    chmod 0644 "$target"
    say "units: installed $(basename "$unit")"
  fi
done
install -d -m 0755 "$NGINX_DIR" "$NGINX_SNIPPETS"
render "$APP_DIR/deploy/nginx/controlplane-proxy.conf" > "$NGINX_SNIPPETS/controlplane-proxy.conf"
if [ ! -f "$NGINX_DIR/controlplane.conf" ]; then
  render "$APP_DIR/deploy/nginx/controlplane.conf" > "$NGINX_DIR/controlplane.conf"
  say "nginx: sample in $NGINX_DIR/controlplane.conf (edit server_name and certificates, then enable it)"
fi

if [ $NO_SYSTEMD = 1 ]; then
  say "systemd: skipped (--no-systemd); units are in $UNIT_DIR"
else
  systemctl daemon-reload
  if [ -z "$WORKERS" ]; then
    WORKERS="control housekeeping"
    if [ $CONFIGURED = 1 ]; then
      WORKERS="control housekeeping $(manage shell -c 'from compute.selectors import hypervisor_queues; print(" ".join(hypervisor_queues()))')"
    fi
  fi
  units=(controlplane.target controlplane-web.service controlplane-beat.service controlplane-console.service)
  for queue in $WORKERS; do units+=("controlplane-worker@${queue}.service"); done
  systemctl enable --quiet "${units[@]}"
  say "systemd: enabled ${units[*]}"
  if systemctl is-active --quiet controlplane.target; then
    say "systemd: restarting controlplane.target (workers shut down warm)"
    systemctl restart controlplane.target
  elif [ $CONFIGURED = 1 ]; then
    say "systemd: start everything with: systemctl start controlplane.target"
  fi
fi
say "done: $APP_DIR (environment $ENV_FILE)"

#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis the test suite needs are up: start them if
# they are down (this machine kind has no systemd), then fail loudly if they
# stay unreachable. Addresses come from DATABASE_URL / CELERY_BROKER_URL
# (defaults: 127.0.0.1:5432 user postgres, 127.0.0.1:6379).
set -uo pipefail
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/controlplane}
CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}

redis_up() { python3 - "$CELERY_BROKER_URL" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
try:
    with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=2) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(64).startswith((b"+PONG", b"-NOAUTH")) else 1)
except OSError:
    sys.exit(1)
PY
}
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! pg_up; then
  echo "PostgreSQL is down; starting it..."
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "Redis is down; starting it..."
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi

failed=0
pg_up || { echo "ERROR: PostgreSQL at 127.0.0.1:5432 is unreachable and could not be started." >&2; failed=1; }
redis_up || { echo "ERROR: Redis at $CELERY_BROKER_URL is unreachable and could not be started." >&2; failed=1; }
# The database URL itself must work (a wrong DATABASE_URL is a clear error, not a test failure later).
if [ $failed = 0 ]; then
  PY=${PY:-.venv/bin/python}
  "$PY" - "$DATABASE_URL" <<'PY' || failed=1
import sys
import psycopg
url = sys.argv[1]
if not url.startswith(("postgres://", "postgresql://")):
    sys.exit(f"ERROR: DATABASE_URL must point at PostgreSQL for the test suite, got {url!r}.")
try:
    psycopg.connect(url.replace("postgres://", "postgresql://", 1), connect_timeout=5, dbname="postgres").close()
except Exception as exc:
    sys.exit(f"ERROR: cannot connect with DATABASE_URL={url!r}: {exc}")
PY
fi
[ $failed = 0 ] || exit 1
echo "PostgreSQL and Redis are up."

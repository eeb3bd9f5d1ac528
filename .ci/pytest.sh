#!/usr/bin/env bash
# The suite's pytest, as `make test` runs it.
#
# With arguments (PYTEST_ARGS): one pytest process with them.
# Without: the whole suite as two pytest processes side by side, to use both cores while
# tests wait on real back ends. The second runs the directories that share no machine-wide
# daemon with the rest (chaos and deploy run private PostgreSQL/Redis/gunicorn stacks, the
# browser tests their own live server and console proxy on free ports; the others need only
# the database and Redis; libvirt, nova, Keystone/Neutron and PowerDNS stay with the first):
# it gets its own test database
# (test_<name>_second) and its own Redis database (14; the first keeps 15), so the two never
# see each other's rows, queues, cache keys or workers. Its output follows the first's.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=${PYTEST:-.venv/bin/pytest}

if [ "$#" -gt 0 ]; then
  exec "$PYTEST" "$@"
fi

SECOND=(tests/chaos tests/deploy tests/accounts tests/audit tests/billing tests/browser tests/notifications tests/portal)
db=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/controlplane}
second_redis=${SECOND_REDIS_URL:-redis://127.0.0.1:6379/14}
log=$(mktemp -t pytest-second.XXXXXX)

DATABASE_URL="${db}_second" CELERY_BROKER_URL="$second_redis" CELERY_RESULT_BACKEND="$second_redis" \
  CACHE_URL="$second_redis" setsid "$PYTEST" "${SECOND[@]}" >"$log" 2>&1 &
second=$!
trap 'kill -TERM -- -"$second" 2>/dev/null' INT TERM

ignore=()
for dir in "${SECOND[@]}"; do ignore+=("--ignore=$dir"); done
"$PYTEST" "${ignore[@]}"
first_rc=$?

wait "$second"
second_rc=$?
echo
echo "=== second pytest process: ${SECOND[*]} (exit $second_rc) ==="
cat "$log"
rm -f "$log"
if [ "$first_rc" -ne 0 ] || [ "$second_rc" -ne 0 ]; then
  echo "pytest failed: first process exit $first_rc, second process exit $second_rc" >&2
  exit 1
fi

"""A separate process that appends audit events (used by test_concurrency).

``python -m tests.audit.appender <name> <count> <go-file>``: boots Django, waits
until ``go-file`` exists so every writer starts together, then records
``count`` events as ``worker:<name>``.
"""

import os
import sys
import time

import django


def main(name: str, count: int, go_file: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    import audit

    deadline = time.monotonic() + 60
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            sys.exit("the go file never appeared")
        time.sleep(0.01)
    for i in range(count):
        audit.record(actor=audit.worker_actor(name), action="operation.state_changed", details={"i": i})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])

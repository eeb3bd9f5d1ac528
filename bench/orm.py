"""Django-side helpers for benchmarks: bulk rows (no services, no audit: data to measure
against) and counting SQL statements (CaptureQueriesContext keeps at most 9,000)."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable


def active_vms(
    *, hypervisor, plan, image, owners: list, count: int, name: Callable[[int], str], backend_id: Callable[[int], str]
) -> list:
    """``count`` active, running VMs; ``owners`` is a list of (user, project), taken in turn."""
    from compute.models import VirtualMachine

    rows = []
    for n in range(count):
        user, project = owners[n % len(owners)]
        rows.append(
            VirtualMachine(
                project=project,
                owner=user,
                name=name(n),
                plan=plan,
                image=image,
                hypervisor=hypervisor,
                backend_id=backend_id(n),
                status="active",
                power_state="running",
                ip_addresses=[f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 2}"],
            )
        )
    return VirtualMachine.objects.bulk_create(rows, batch_size=2000)


class Captured:
    captured_queries: list = []


@contextlib.contextmanager
def count_queries():
    """CaptureQueriesContext without its 9,000-statement cap (BEGIN and COMMIT included)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    saved, result = connection.queries_log, Captured()
    connection.queries_log = collections.deque(saved)  # no maxlen
    try:
        with CaptureQueriesContext(connection) as captured:
            yield result
        result.captured_queries = captured.captured_queries
    finally:
        connection.queries_log = saved

"""The one place compute publishes Celery tasks, by name (compute never imports workers).

Publishing is best effort: a broker that is down must not break the request
that committed the Operation. The Operation table is the outbox; the relay
re-publishes pending operations nobody picked up.
"""

import logging

from django.conf import settings
from django.db import transaction

from controlplane.celery import FIRE_AND_FORGET, app

logger = logging.getLogger(__name__)

EXECUTE = "execute_operation"
POLL = "poll_operation"
RESYNC = "resync_vm"
CHECK = "check_hypervisor"
REVERSE_DNS = "apply_reverse_dns"


def _send(name: str, args: list, queue: str, countdown: float | None = None) -> bool:
    try:
        app.send_task(name, args=args, queue=queue, countdown=countdown, **FIRE_AND_FORGET)
        return True
    except Exception:  # broker down: the relay will publish it later
        logger.warning("could not publish %s%s to %s; the relay will retry", name, args, queue, exc_info=True)
        return False


def publish_execute(*, operation_id: int, queue: str, countdown: float | None = None, on_commit: bool = True) -> None:
    if on_commit:
        transaction.on_commit(lambda: _send(EXECUTE, [operation_id], queue, countdown))
    else:
        _send(EXECUTE, [operation_id], queue, countdown)


def _send_many(name: str, messages: list[tuple[int, str]]) -> None:
    """Publish many messages of one task, each ``(id, queue)``, on one producer (one pooled
    broker connection); on Redis in pipelined round trips (kombu's ``Producer.batch``)."""
    try:
        with app.producer_or_acquire() as producer, producer.batch():
            for object_id, queue in messages:
                app.send_task(name, args=[object_id], queue=queue, producer=producer, **FIRE_AND_FORGET)
    except Exception:  # broker down: what did not go out (maybe all of it), the relay publishes later
        logger.warning("could not publish %d %s; the relay will retry", len(messages), name, exc_info=True)


def publish_execute_many(*, operations: list[tuple[int, str]], on_commit: bool = True) -> None:
    """``publish_execute`` for many ``(operation_id, queue)`` at once (a batch's creates, the relay)."""
    if not operations:
        return
    if on_commit:
        transaction.on_commit(lambda: _send_many(EXECUTE, operations))
    else:
        _send_many(EXECUTE, operations)


def publish_poll(*, operation_id: int, token: str, queue: str, countdown: float) -> bool:
    return _send(POLL, [operation_id, token], queue, countdown)


def publish_resync(*, vm_id: int, queue: str) -> None:
    transaction.on_commit(lambda: _send(RESYNC, [vm_id], queue))


def publish_check(*, hypervisor_id: int, queue: str) -> None:
    _send(CHECK, [hypervisor_id], queue)


def publish_reverse_dns(*, record_id: int, on_commit: bool = True, countdown: float | None = None) -> None:
    """Write one PTR record to PowerDNS (after commit; the beat relay retries what this misses).
    On the housekeeping queue: it waits on an outside server, never in front of the engine's relay."""
    if on_commit:
        transaction.on_commit(lambda: _send(REVERSE_DNS, [record_id], settings.HOUSEKEEPING_QUEUE))
    else:
        _send(REVERSE_DNS, [record_id], settings.HOUSEKEEPING_QUEUE, countdown)


def publish_reverse_dns_many(*, record_ids: list[int]) -> None:
    """``publish_reverse_dns`` for many records (a batch's addresses): after commit, together."""
    messages = [(record_id, settings.HOUSEKEEPING_QUEUE) for record_id in record_ids]
    if messages:
        transaction.on_commit(lambda: _send_many(REVERSE_DNS, messages))

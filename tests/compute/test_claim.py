"""The claim: a compare-and-swap that also respects the hypervisor's limit of concurrent operations.

The limit's count runs in the claim's UPDATE, a statement begun after the hypervisor's row
lock was granted: it must see every claim the lock's earlier holders committed.
"""

import threading

import pytest
from django.db import connection

from compute import dispatch, services
from compute.choices import OperationState
from compute.models import Hypervisor, Operation, VirtualMachine

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published(monkeypatch):
    sent = []
    monkeypatch.setattr(
        dispatch, "_send", lambda name, args, queue, countdown=None: sent.append((name, args, countdown))
    )
    return sent


def _pending_ops(user, project, plan, image, hypervisor, count):
    ops = []
    for n in range(count):
        vm = VirtualMachine.objects.create(
            project=project, owner=user, plan=plan, image=image, hypervisor=hypervisor, name=f"lim-{n}", status="active"
        )
        ops.append(Operation.objects.create(vm=vm, project=project, hypervisor=hypervisor, action="stop"))
    return ops


def test_at_its_limit_the_hypervisor_queues_the_operation(user, project, plan, image, simulator, published):
    # Given a hypervisor that runs one operation at a time, with one running
    Hypervisor.objects.filter(pk=simulator.pk).update(max_concurrent_operations=1)
    running, waiting = _pending_ops(user, project, plan, image, simulator, 2)
    assert services.operation_claim(operation_id=running.pk, worker="w1") is not None

    # When a worker tries to claim the other
    claim = services.operation_claim(operation_id=waiting.pk, worker="w2")

    # Then it is not claimed: it waits, says why, and is published again for later
    waiting.refresh_from_db()
    assert claim is None and waiting.state == OperationState.PENDING
    assert "at its limit of concurrent operations" in waiting.progress_message
    assert [(name, args) for name, args, _ in published] == [(dispatch.EXECUTE, [waiting.pk])]
    assert published[0][2] > 0


def test_concurrent_claims_never_exceed_the_limit(user, project, plan, image, simulator, published):
    # Given a hypervisor that runs two operations at a time and six pending
    Hypervisor.objects.filter(pk=simulator.pk).update(max_concurrent_operations=2)
    ops = _pending_ops(user, project, plan, image, simulator, 6)
    start = threading.Barrier(len(ops))
    claims = []

    def claim(op):
        try:
            start.wait()
            claims.append(services.operation_claim(operation_id=op.pk, worker=f"w{op.pk}"))
        finally:
            connection.close()

    # When six workers claim them at the same moment, each on its own connection
    threads = [threading.Thread(target=claim, args=(op,)) for op in ops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly two run, and the other four wait for a slot
    assert sum(c is not None for c in claims) == 2
    assert Operation.objects.filter(hypervisor=simulator, state=OperationState.RUNNING).count() == 2
    assert Operation.objects.filter(hypervisor=simulator, state=OperationState.PENDING).count() == 4

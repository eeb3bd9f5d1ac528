"""What one reconciliation pass costs when nothing changed (bench/reconcile/run.py measures it at scale)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compute.choices import PowerState, VMStatus
from compute.models import VirtualMachine
from workers import engine
from workers.drivers.simulator import store_for


@pytest.fixture
def synced_vms(user, project, plan, image, simulator):
    """20 running guests and their active VM rows, in agreement."""
    store = store_for(simulator.connection["state_path"])
    vms = []
    for n in range(20):
        backend_id = store.add_guest(f"vm-{n}")
        vms.append(
            VirtualMachine(
                project=project, owner=user, name=f"vm-{n}", plan=plan, image=image, hypervisor=simulator,
                backend_id=backend_id, status=VMStatus.ACTIVE, power_state=PowerState.RUNNING,
            )
        )  # fmt: skip
    return VirtualMachine.objects.bulk_create(vms)


def test_a_pass_with_nothing_to_change_costs_the_same_for_any_number_of_vms(synced_vms, simulator):
    engine.reconcile_hypervisor(simulator)  # first pass: settles power_state_at and the drift report

    with CaptureQueriesContext(connection) as queries:
        report = engine.reconcile_hypervisor(simulator)

    assert report["updated"] == 0 and report["missing"] == 0
    # 10: + the backups pass (idle VMs, their backup rows), constant like the snapshots pass
    assert len(queries.captured_queries) <= 10, [q["sql"][:60] for q in queries.captured_queries]

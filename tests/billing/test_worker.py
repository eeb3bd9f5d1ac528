"""The charge job and suspension with a real worker process, real Redis and
PostgreSQL: a SIGKILL mid-job, and VMs stopped through ordinary operations."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import project_create
from audit.models import AuditEvent
from billing import services
from billing.models import UsageCharge, UsageRecord, Wallet
from billing.periods import slot_floor
from billing.selectors import ledger_problems
from compute import services as compute_services
from compute.choices import OperationState, VMStatus
from compute.models import Operation, VirtualMachine, VMStatusEvent
from controlplane.celery import app
from controlplane.errors import Conflict, PaymentRequired
from tests.fixtures.billing import fund, set_profile
from tests.fixtures.compute import wait_for, wait_operation

pytestmark = pytest.mark.worker
D = Decimal
PROJECTS = 300


def test_a_worker_killed_during_the_charge_job_leaves_the_ledger_balanced(
    celery_worker_factory, transactional_db, user, plan, image, simulator
):
    # Given 300 projects, each with a VM active for the last 4 complete hours
    start = slot_floor(timezone.now() - timedelta(minutes=5)) - timedelta(hours=4)
    projects = [project_create(name=f"crash {n}", owner=user) for n in range(PROJECTS)]
    vms = VirtualMachine.objects.bulk_create(
        VirtualMachine(project=p, owner=user, name="vm", plan=plan, image=image, hypervisor=simulator, status="active")
        for p in projects
    )
    VMStatusEvent.objects.bulk_create(
        VMStatusEvent(vm=vm, status="active", power_state="running", at=start, source="tests") for vm in vms
    )
    worker = celery_worker_factory(queues="billing-crash", name="billing-victim", concurrency=1)

    # When the charge job runs on the worker and the worker is SIGKILLed midway
    app.send_task("charge_usage", queue="billing-crash")
    wait_for(lambda: UsageCharge.objects.count() >= 5, timeout=60, interval=0.02, message="charging to start")
    worker.kill()
    charged = UsageCharge.objects.count()
    assert charged < PROJECTS, "the job finished before the kill: raise PROJECTS"

    # Then what was committed is whole: every wallet equals its entries, nothing charged twice
    assert ledger_problems() == []
    assert UsageRecord.objects.count() == 4 * PROJECTS
    assert UsageRecord.objects.filter(charge__isnull=False).count() == 4 * charged
    assert Wallet.objects.filter(balance__lt=0).count() == charged

    # When a worker comes back and the job runs again (beat sends it every few minutes; the
    # unacknowledged message is also redelivered after the visibility timeout, and finds nothing left)
    worker.start()
    app.send_task("charge_usage", queue="billing-crash")
    wait_for(lambda: UsageCharge.objects.count() == PROJECTS, timeout=60, interval=0.2, message="the job to finish")
    worker.stop()

    # Then every project is charged exactly once: 4 h x 1.50 = 6.00 + CGST/SGST 0.54 + 0.54 (no address: supplier state)
    assert ledger_problems() == []
    assert UsageRecord.objects.filter(charge__isnull=True).count() == 0
    assert set(Wallet.objects.filter(project__in=projects).values_list("balance", flat=True)) == {D("-7.08")}
    assert UsageCharge.objects.values("project").distinct().count() == PROJECTS


@pytest.fixture
def running_vm(live_worker, user, project, plan, image, simulator):
    simulator.connection.update(latency=0.05)
    simulator.save()
    set_profile(project, "karnataka")
    fund(project, "100")
    request = compute_services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="web-1"
    )
    vm = VirtualMachine.objects.get(request=request)
    assert wait_operation(Operation.objects.get(vm=vm, action="create").pk).state == OperationState.SUCCEEDED
    vm.refresh_from_db()
    assert vm.status == VMStatus.ACTIVE
    return vm


def _stop_operation(vm):
    return wait_for(lambda: Operation.objects.filter(vm=vm, action="stop").first(), message="a stop operation")


def test_suspension_stops_vms_through_operations_and_a_top_up_lifts_it(
    running_vm, user, project, plan, image, simulator
):
    # Given a wallet below zero and no grace left
    services.billing_settings_update(actor="system:tests", grace_hours=0)
    services.wallet_adjust(project=project, amount="-150", actor="system:tests", reason="usage")

    # When the charge job's suspension step runs
    assert services.suspension_apply_due(now=timezone.now() + timedelta(seconds=1)) == 1

    # Then the project is suspended and its VM is stopped by an ordinary operation, run by the worker
    project.refresh_from_db()
    assert project.is_suspended and "top up to lift" in project.suspended_reason
    stop = wait_operation(_stop_operation(running_vm).pk)
    assert stop.state == OperationState.SUCCEEDED and stop.requested_by is None
    running_vm.refresh_from_db()
    assert running_vm.status == VMStatus.STOPPED
    assert AuditEvent.objects.filter(action="project.suspended", project_id=project.pk).exists()
    assert AuditEvent.objects.filter(action="vm.stop.requested", actor="system:billing").exists()

    # And new requests and starts are refused
    with pytest.raises((PaymentRequired, Conflict), match="suspended"):
        services.wallet_check_can_afford(project=project, plan=plan)
    with pytest.raises(Conflict, match="suspended"):
        compute_services.vm_request_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="web-2"
        )
    with pytest.raises(Conflict, match="suspended"):
        compute_services.vm_action(vm=running_vm, action="start", user=user)

    # When a top-up brings the balance back above zero
    services.wallet_topup(project=project, amount="100", actor="system:tests")

    # Then the suspension is lifted; the VM stays stopped (auto-start is off by default)
    project.refresh_from_db()
    assert not project.is_suspended
    assert not Wallet.objects.get(project=project).suspended_by_billing
    assert AuditEvent.objects.filter(action="project.unsuspended", project_id=project.pk).exists()
    assert not Operation.objects.filter(vm=running_vm, action="start").exists()
    services.wallet_check_can_afford(project=project, plan=plan)


def test_a_lifted_suspension_starts_the_vms_billing_stopped_when_configured(running_vm, project):
    services.billing_settings_update(actor="system:tests", grace_hours=0, auto_start_after_suspension=True)
    services.wallet_adjust(project=project, amount="-150", actor="system:tests", reason="usage")
    services.suspension_apply_due(now=timezone.now() + timedelta(seconds=1))
    wait_operation(_stop_operation(running_vm).pk)

    services.wallet_topup(project=project, amount="100", actor="system:tests")

    start = wait_for(lambda: Operation.objects.filter(vm=running_vm, action="start").first(), message="a start")
    assert wait_operation(start.pk).state == OperationState.SUCCEEDED
    running_vm.refresh_from_db()
    assert running_vm.status == VMStatus.ACTIVE

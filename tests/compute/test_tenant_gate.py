"""The tenant gate: a create on a hypervisor that provisions tenants waits for the project's
provision operation (compute/services/tenants.py). Services called directly, as the worker
does after its claim; the whole flow through a real worker is in test_openstack_e2e.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from compute import services
from compute.choices import Action, OperationState, VMStatus
from compute.models import ImageReference, Operation, TenantBinding, VirtualMachine
from compute.services.tenants import FAILED, READY, WAITING
from tests.fixtures.factories import HypervisorFactory, ImageFactory, UserFactory, make_billable


@pytest.fixture
def cloud(db):
    return HypervisorFactory(name="os-1", kind="openstack", queue="os-unit", build_timeout_seconds=600)


@pytest.fixture
def request_vm(cloud, user, project, plan):
    image = ImageFactory()
    ImageReference.objects.create(image=image, hypervisor=cloud, ref="glance-image-id")

    def make(name="web-1", who=None, where=None):
        owner = who or user
        vm_request = services.vm_request_create(
            user=owner,
            project=owner.projects.get(),
            plan=plan,
            image=image,
            hypervisor=where or cloud,
            name=name,
        )
        return Operation.objects.get(vm=VirtualMachine.objects.get(request=vm_request), action=Action.CREATE)

    return make


def claim(operation):
    claimed = services.operation_claim(operation_id=operation.pk, worker="w1@test")
    assert claimed is not None
    return claimed.operation, claimed.token


def provisions(project, cloud):
    return Operation.objects.filter(project=project, hypervisor=cloud, action=Action.PROVISION)


def test_a_first_create_starts_the_provision_and_waits_without_using_an_attempt(request_vm, project, cloud):
    # Given an approved create on a cloud where the project has no tenant yet
    operation, token = claim(request_vm())
    project.quota.max_vms = 7
    project.quota.save()

    # When its worker asks the gate
    assert services.tenant_gate(operation=operation, token=token) == WAITING

    # Then one provision operation exists, carrying our quotas, and the create waits for it
    [provision] = provisions(project, cloud)
    assert provision.state == OperationState.PENDING and provision.vm is None
    assert provision.params == {
        "quotas": {"instances": 7, "cores": 32, "ram_mib": 65536, "disk_gib": 1000},
        "for_operation": operation.pk,
    }
    waiting = Operation.objects.get(pk=operation.pk)
    assert (waiting.state, waiting.attempts, waiting.claim_token) == (OperationState.PENDING, 0, None)
    assert waiting.params == {"tenant_provision": provision.pk}
    assert waiting.progress_message == f"Waiting for tenant provisioning on os-1 (operation {provision.pk})."
    assert waiting.next_attempt_at > timezone.now()
    assert AuditEvent.objects.filter(action="operation.state_changed", details__operation=provision.pk).exists()


def test_waiting_again_and_again_uses_no_attempts(request_vm, project, cloud):
    create = request_vm()
    for _ in range(8):
        Operation.objects.filter(pk=create.pk).update(next_attempt_at=timezone.now())
        operation, token = claim(create)
        assert services.tenant_gate(operation=operation, token=token) == WAITING
    create.refresh_from_db()
    assert create.attempts == 0 and create.max_attempts == 5
    assert provisions(project, cloud).count() == 1


def test_creates_of_one_project_share_one_provision_others_get_their_own(request_vm, project, cloud):
    first, first_token = claim(request_vm("web-1"))
    second, second_token = claim(request_vm("web-2"))
    stranger = UserFactory()
    make_billable(stranger.projects.get())
    other, other_token = claim(request_vm("web-3", who=stranger))

    for operation, token in [(first, first_token), (second, second_token), (other, other_token)]:
        assert services.tenant_gate(operation=operation, token=token) == WAITING

    [provision] = provisions(project, cloud)
    assert {Operation.objects.get(pk=op.pk).params["tenant_provision"] for op in (first, second)} == {provision.pk}
    assert provisions(stranger.projects.get(), cloud).count() == 1


def test_a_ready_binding_lets_the_create_go_on(request_vm, project, cloud):
    TenantBinding.objects.create(project=project, hypervisor=cloud, ready=True, data={"project_id": "p"})
    operation, token = claim(request_vm())
    assert services.tenant_gate(operation=operation, token=token) == READY
    assert Operation.objects.get(pk=operation.pk).state == OperationState.RUNNING
    assert not provisions(project, cloud).exists()


def test_a_failed_provision_fails_its_creates_with_the_reason(request_vm, project, cloud):
    # Given a create waiting for a provision that then fails
    create = request_vm()
    operation, token = claim(create)
    services.tenant_gate(operation=operation, token=token)
    provision = provisions(project, cloud).get()
    provision, provision_token = claim(provision)
    message = "OpenStack refused creating project cp-x: not authorized (a role is missing)"
    services.operation_fail(operation=provision, token=provision_token, code="forbidden", message=message)

    # When the create is woken and asks again
    assert services.tenant_wake_waiting(provision=provision) == 1
    operation, token = claim(create)
    assert services.tenant_gate(operation=operation, token=token) == FAILED

    # Then it failed with the provision's reason, the VM is in error and its quota is back
    create.refresh_from_db()
    assert create.state == OperationState.FAILED and create.error_code == "tenant_provision_failed"
    assert create.error_message == f"Setting up the project on os-1 failed: {message}"
    assert "tenant_provision" not in create.params
    assert create.vm.status == VMStatus.ERROR
    project.quota.refresh_from_db()
    assert project.quota.used_vms == 0


def test_an_operator_retry_after_a_failed_provision_provisions_afresh(request_vm, project, cloud):
    create = request_vm()
    operation, token = claim(create)
    services.tenant_gate(operation=operation, token=token)
    failed, failed_token = claim(provisions(project, cloud).get())
    services.operation_fail(operation=failed, token=failed_token, code="x", message="no network endpoint")
    operation, token = claim(create)
    assert services.tenant_gate(operation=operation, token=token) == FAILED

    # When an operator retries the create (after fixing the cloud's settings)
    services.operation_retry(operation=Operation.objects.get(pk=create.pk), actor=UserFactory(is_staff=True))
    operation, token = claim(create)

    # Then it waits for a new provision, not the failed one
    assert services.tenant_gate(operation=operation, token=token) == WAITING
    fresh = provisions(project, cloud).exclude(pk=failed.pk).get()
    assert Operation.objects.get(pk=create.pk).params["tenant_provision"] == fresh.pk


def test_a_provision_that_outlasts_the_build_timeout_fails_the_create(request_vm, project, cloud):
    create = request_vm()
    operation, token = claim(create)
    services.tenant_gate(operation=operation, token=token)
    Operation.objects.filter(pk=create.pk).update(
        started_at=timezone.now() - timedelta(seconds=601), next_attempt_at=timezone.now()
    )
    operation, token = claim(create)
    assert services.tenant_gate(operation=operation, token=token) == FAILED
    create.refresh_from_db()
    assert create.error_message == "Setting up the project on os-1 did not finish within the build timeout."


def test_wake_republishes_only_the_creates_waiting_for_that_provision(request_vm, project, cloud):
    create = request_vm()
    operation, token = claim(create)
    services.tenant_gate(operation=operation, token=token)
    provision = provisions(project, cloud).get()
    later = timezone.now() + timedelta(minutes=5)
    Operation.objects.filter(pk=create.pk).update(next_attempt_at=later)

    assert services.tenant_wake_waiting(provision=provision) == 1
    assert Operation.objects.get(pk=create.pk).next_attempt_at <= timezone.now()


def test_quotas_of_a_project_without_a_quota_row_are_the_defaults(project):
    assert not hasattr(project, "quota")  # made at its first request
    assert services.tenant_quotas(project=project) == {
        "instances": 10,
        "cores": 32,
        "ram_mib": 65536,
        "disk_gib": 1000,
    }

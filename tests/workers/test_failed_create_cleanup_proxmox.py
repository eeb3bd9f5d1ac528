"""Issue 17: a Proxmox create that fails after its clone exists destroys that VMID.

Against fakepve (its in-process fake: PVE's own error catalogue, tasks that finish at once);
the engine runs in this process (``run_engine``) with the real Proxmox driver. Failures after
the clone: Proxmox refuses the configuration (so the clone was never tagged with our key, the
"untagged half-configured guest" reconciliation then reported as unknown), or QEMU exits at
start. Either way the VMID is destroyed, the operation says so, and a retry makes one guest."""

import pytest

from compute import services
from compute.choices import OperationState, VMStatus
from compute.models import ImageReference
from tests.fakepve_server import QEMU_TEMPLATE, credentials, settings_for
from tests.fixtures.compute import request_create, run_engine
from tests.fixtures.factories import HypervisorFactory, ImageFactory, PlanFactory
from tests.fixtures.proxmox import SSH_KEY


def _guests(pve) -> list[int]:
    """VMIDs of the guests on the fake that are not templates."""
    return sorted(vm.vmid for vm in pve.vms if not vm.template)


@pytest.fixture
def proxmox(db, pve, fakepve_cafile):
    hypervisor = HypervisorFactory(
        name="pve-cleanup",
        kind="proxmox",
        queue="nobody",
        connection=settings_for(pve.host, pve.port, fakepve_cafile),
        credentials=credentials(),
    )
    image = ImageFactory()
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref=str(QEMU_TEMPLATE))
    return hypervisor, PlanFactory(disk_gib=8), image


@pytest.mark.parametrize(
    "method, suffix, error",
    [
        ("POST", "/config", "parameter_verification_failed"),  # after the clone, before our key is on it
        ("POST", "/status/start", "qemu_exited_code"),  # after clone, configure and resize
    ],
    ids=["configure-refused", "start-fails"],
)
def test_a_create_failing_after_its_clone_destroys_the_vmid(pve, proxmox, user, project, method, suffix, error):
    hypervisor, plan, image = proxmox
    pve.fail(method, suffix, error=error, times=1)
    vm, op = request_create(user, project, plan, image, hypervisor, "web-debris", ssh_public_key=SSH_KEY)

    done = run_engine(op.pk)

    # Then the create failed, the clone it made was destroyed, and the operation says so
    assert done.state == OperationState.FAILED, done.error_message
    clones = [t for t in pve.tasklog if t["type"] == "qmclone"]
    assert len(clones) == 1
    assert "was removed from the hypervisor" in done.error_message, done.error_message
    assert done.result["cleanup"]["removed"] == str(done.task_data.get("backend_id") or clones[0]["id"])
    assert _guests(pve) == []
    vm.refresh_from_db()
    assert (vm.status, vm.task_state) == (VMStatus.ERROR, None)

    # And an operator's retry (same idempotency key) builds exactly one guest
    services.operation_retry(operation=done, actor=user)
    assert run_engine(op.pk).state == OperationState.SUCCEEDED
    assert len(_guests(pve)) == 1

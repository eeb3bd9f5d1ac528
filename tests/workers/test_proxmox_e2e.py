"""A VM and a container on Proxmox end to end: API → approval → Operation → Redis → real worker →
Proxmox driver → fakepve as its own process, where a clone, a build or a start takes real time
(a PVE second is 0.05 s; those tasks take 40 of them), so the worker's UPID polling really waits."""

import re
import time

import pytest

from compute.choices import OperationState, PowerState, VMStatus
from compute.models import ImageReference, Operation, VirtualMachine
from tests.fakepve_server import OSTEMPLATE, QEMU_TEMPLATE, credentials, settings_for
from tests.fixtures.compute import wait_operation
from tests.fixtures.factories import HypervisorFactory, ImageFactory, PlanFactory
from tests.fixtures.proxmox import SSH_KEY

QUEUE = "pve-e2e"


@pytest.fixture(scope="session")
def _pve_session_worker(celery_worker_factory):
    return celery_worker_factory(queues=QUEUE, name="pve", concurrency=2)


@pytest.fixture
def pve_worker(_pve_session_worker, transactional_db):
    """A worker unit serving the Proxmox hypervisor's queue (restarted if a test killed it)."""
    if _pve_session_worker.proc.poll() is not None:
        _pve_session_worker.start()
    return _pve_session_worker


def test_test_connection_records_version_and_nodes(db, pve, fakepve_cafile):
    # What the admin's "Test connection" action runs on a worker
    from workers.engine import check_hypervisor

    hypervisor = HypervisorFactory(
        kind="proxmox", connection=settings_for(pve.host, pve.port, fakepve_cafile), credentials=credentials()
    )
    result = check_hypervisor(hypervisor.pk)
    hypervisor.refresh_from_db()
    assert hypervisor.last_check == result and hypervisor.last_checked_at is not None
    assert (result["ok"], result["version"], result["tls_verified"]) == (True, "9.0.10", True)
    assert result["nodes"] == [{"name": "pve1", "status": "online", "free_memory_mib": 6144}]


def test_test_connection_with_a_wrong_token_says_so(db, pve, fakepve_cafile):
    from workers.engine import check_hypervisor

    hypervisor = HypervisorFactory(
        kind="proxmox",
        connection=settings_for(pve.host, pve.port, fakepve_cafile),
        credentials={**credentials(), "token_secret": "revoked"},
    )
    result = check_hypervisor(hypervisor.pk)
    assert result["ok"] is False and "refused the credentials" in result["error"]


@pytest.mark.worker
@pytest.mark.parametrize(
    "guest_type, image_ref, build_task", [("vm", QEMU_TEMPLATE, "qmclone"), ("container", OSTEMPLATE, "vzcreate")]
)
def test_request_approve_start_stop_reboot_delete_on_proxmox(
    pve_worker, fakepve_server, api, staff_api, project, guest_type, image_ref, build_task
):
    # Given a Proxmox hypervisor registered as an operator would, and a plan that needs approval
    hypervisor = HypervisorFactory(
        name=f"pve-{guest_type}",
        kind="proxmox",
        queue=QUEUE,
        connection=fakepve_server.settings(poll_seconds=0.2),
        credentials=credentials(),
    )
    plan = PlanFactory(guest_type=guest_type, requires_approval=True, disk_gib=8)
    image = ImageFactory(guest_type=guest_type)
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref=str(image_ref))

    # When a user requests a guest and staff approve it
    response = api.post(
        "/api/v1/vm-requests/",
        {
            "project": project.slug,
            "plan": plan.pk,
            "image": image.pk,
            "hypervisor": hypervisor.pk,
            "name": "app-1",
            "ssh_public_key": SSH_KEY,
        },
        format="json",
    )
    assert response.status_code == 201 and response.json()["status"] == "pending", response.json()
    approved = staff_api.post(f"/api/v1/vm-requests/{response.json()['id']}/approve/").json()
    assert approved["status"] == "approved"
    started = time.monotonic()
    create = Operation.objects.get(vm_id=approved["vm"], action="create")

    # Then the worker builds it on Proxmox: the operation shows the UPIDs and its progress as it goes
    seen = set()
    while (op := Operation.objects.get(pk=create.pk)).state not in (OperationState.SUCCEEDED, OperationState.FAILED):
        if op.task_ref.startswith("UPID:"):
            seen.add((op.task_ref.split(":")[5], op.progress))
        assert time.monotonic() - started < 60, f"create still {op.state}: {op.progress_message}"
        time.sleep(0.05)
    assert op.state == OperationState.SUCCEEDED, op.error_message
    assert {task for task, _ in seen} >= {build_task, "vzstart" if guest_type == "container" else "qmstart"}
    assert any(0 < (progress or 0) < 100 for _, progress in seen)
    vm = VirtualMachine.objects.get(pk=approved["vm"])
    assert (vm.status, vm.power_state) == (VMStatus.ACTIVE, PowerState.RUNNING)
    assert re.fullmatch(r"\d+", vm.backend_id)

    # and the build waited on Proxmox's tasks instead of finishing at once: the build task's
    # status was polled several times while it ran (40 PVE s = 2 s)
    assert time.monotonic() - started >= 2
    build_polls = fakepve_server.requests(f":{build_task}:")
    assert len([line for line in build_polls if "/status" in line]) >= 2

    # stop → start → reboot → delete, each through the API, each ending on Proxmox
    for action, status, power in [
        ("stop", VMStatus.STOPPED, PowerState.STOPPED),
        ("start", VMStatus.ACTIVE, PowerState.RUNNING),
        ("reboot", VMStatus.ACTIVE, PowerState.RUNNING),
        ("delete", VMStatus.DELETED, PowerState.STOPPED),
    ]:
        if action == "delete":
            response = api.delete(f"/api/v1/virtual-machines/{vm.pk}/")
        else:
            response = api.post(f"/api/v1/virtual-machines/{vm.pk}/{action}/")
        assert response.status_code == 202, response.json()
        finished = wait_operation(response.json()["operation"]["id"], timeout=60)
        assert finished.state == OperationState.SUCCEEDED, (action, finished.error_message)
        assert finished.task_ref.startswith("UPID:pve1:"), finished.task_ref
        vm.refresh_from_db()
        assert (vm.status, vm.power_state, vm.task_state) == (status, power, None), action

    # The guest is gone from Proxmox
    kind = "qemu" if guest_type == "vm" else "lxc"
    assert fakepve_server.requests(f'"DELETE /api2/json/nodes/pve1/{kind}/{vm.backend_id}?purge=1')

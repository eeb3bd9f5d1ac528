"""Issue 17: a create that fails partway on the real libvirtd leaves nothing behind.

Real tier (the libvirtd + QEMU of .ci/libvirt-setup.sh; fails, never skips, without it). The
engine runs in this process (``run_engine``: claim, submit, polls) against the real driver;
Celery delivery of the same cleanup path is covered with a worker on the simulator
(tests/workers/test_deadlines_and_cleanup.py). Two real failures:

- after the disk overlay and the cloud-init seed ISO exist, libvirt refuses the domain
  definition (a machine type QEMU does not have): the driver removes its volumes itself;
- after disk, seed and domain exist, the start fails (QEMU cannot open the serial log
  file): the engine's failure path deletes the guest it made, volumes included, and says so.
"""

import pytest

from compute.choices import OperationState, VMStatus
from compute.models import ImageReference
from tests.fixtures.compute import request_create, run_engine
from tests.fixtures.factories import HypervisorFactory, ImageFactory, PlanFactory
from tests.workers.libvirt_support import GUEST_IMAGE_REF, PREFIX, REAL_POOL, REAL_SETTINGS, real_host

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB8rGKQ1Ryh4cWq0S4Y8o5wJXw6H2m1kR7s8mZ3f2a9b cleanup@ci"


@pytest.fixture
def host():
    yield from real_host()


def _debris(host, name: str) -> tuple[list[str], list[str]]:
    """(domains, volumes) on the host whose name starts with the guest's domain name."""
    pool = host.storagePoolLookupByName(REAL_POOL)
    pool.refresh(0)
    domains = [dom.name() for dom in host.listAllDomains(0) if dom.name().startswith(name)]
    return domains, [volume for volume in pool.listVolumes() if volume.startswith(name)]


@pytest.mark.parametrize(
    "broken, code, removed_by_engine",
    [
        ({"machine": "no-such-machine"}, "invalid_xml", False),  # define refused: disk + seed already made
        ({"serial_log_dir": "/nonexistent-cpt/logs"}, "libvirt_38", True),  # start refused: domain made too
    ],
    ids=["define-fails", "start-fails"],
)
def test_a_create_that_fails_partway_leaves_no_domain_and_no_volumes(
    host, user, project, broken, code, removed_by_engine
):
    # Given a libvirt hypervisor whose guests get a disk overlay, a seed ISO and a domain, and
    # a setting that makes the create fail after some of them exist
    hypervisor = HypervisorFactory(
        name="kvm-cleanup", kind="libvirt", queue="nobody", connection={**REAL_SETTINGS, "cloud_init": True, **broken}
    )
    image = ImageFactory(name="busybox-cleanup")
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref=GUEST_IMAGE_REF)
    plan = PlanFactory(memory_mib=128, disk_gib=1, hard_stop_after_seconds=30)
    vm, op = request_create(user, project, plan, image, hypervisor, f"{PREFIX}clean", ssh_public_key=SSH_KEY)

    # When the engine runs the create
    done = run_engine(op.pk)

    # Then it failed for good, with libvirt's reason
    assert (done.state, done.error_code) == (OperationState.FAILED, code), done.error_message
    vm.refresh_from_db()
    assert (vm.status, vm.task_state) == (VMStatus.ERROR, None)
    # and nothing of it is left on the host: no domain, no disk, no seed
    assert _debris(host, f"{vm.name}-{done.idempotency_key.hex[:12]}") == ([], [])
    # and when the engine removed a guest, the operation says so
    if removed_by_engine:
        assert "was removed from the hypervisor" in done.error_message
        assert done.result["cleanup"]["removed"]

"""The ``VMSpec`` a driver builds or rebuilds a guest from, read through compute selectors."""

from __future__ import annotations

from compute import selectors
from compute.models import Operation

from .drivers.base import PermanentDriverError, VMSpec


def vm_spec(
    operation: Operation,
    *,
    image_id: int | None = None,
    ssh_public_key: str | None = None,
    user_data: str | None = None,
) -> VMSpec:
    """The VM's spec under this operation's idempotency key; a rebuild passes the new image
    (and key / user data) it asked for, a create takes the VM's own."""
    vm = operation.vm
    if image_id is None:
        reference = selectors.image_reference_for_vm(vm=vm)
    else:
        reference = selectors.image_reference_get(image_id=image_id, hypervisor=vm.hypervisor)
    if reference is None:
        image = vm.image if image_id is None else f"#{image_id}"
        raise PermanentDriverError(f"Image {image} has no reference on {vm.hypervisor}.", code="no_image")
    binding = selectors.tenant_binding_ready_for_vm(vm=vm)
    return VMSpec(
        name=vm.name,
        idempotency_key=str(operation.idempotency_key),
        vcpus=vm.plan.vcpus,
        memory_mib=vm.plan.memory_mib,
        disk_gib=vm.plan.disk_gib,
        image_ref=reference.ref,
        guest_type=vm.plan.guest_type,
        ssh_public_key=vm.ssh_public_key if ssh_public_key is None else ssh_public_key,
        user_data=vm.user_data if user_data is None else user_data,
        tenant=binding.data if binding else {},
        network=selectors.vm_network_config(vm=vm),
        extra={
            "hard_stop_after_seconds": vm.plan.hard_stop_after_seconds,
            "plan": vm.plan.name,
            "image": reference.image.name,
            "project": vm.project.slug,
        },
    )

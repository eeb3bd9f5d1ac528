"""Day-2 actions a user asks for: snapshots (create, revert, delete), resize and rebuild.

Each is an Operation on the one engine: the service locks the VM and checks it may
start the action (compute/choices.py ACTION_ALLOWED_FROM, one action at a time, the
hypervisor's driver declares the capability: compute/capabilities.py), writes what the
action is about (a Snapshot row, the resize's reserved quota) and creates the operation
in the same transaction. What the worker submits is workers/day2.py; the write-back of
the result is day2_writeback.py.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from compute import capabilities
from compute.choices import SNAPSHOT_LIVE_STATES, Action, SnapshotState
from compute.models import Image, ImageReference, Operation, Plan, Snapshot, VirtualMachine, name_validator
from controlplane.errors import Conflict, InvalidInput

from .quotas import quota_adjust
from .vms import vm_lock_for_action, vm_operation_start

RESIZE_DIMENSIONS = (("vcpus", "vcpus"), ("memory_mib", "memory"), ("disk_gib", "disk"))


def _require(vm: VirtualMachine, capability: str, what: str) -> None:
    if not capabilities.supports(vm.hypervisor.kind, capability):
        raise Conflict(f"{what} are not available on {vm.hypervisor.region or vm.hypervisor.name}.", code="unsupported")


# -- snapshots ------------------------------------------------------------------------------


@transaction.atomic
def vm_snapshot_create(*, vm: VirtualMachine, name: str, user=None, request=None) -> Operation:
    """Take a snapshot called ``name``; at most ``plan.max_snapshots`` per VM."""
    name = (name or "").strip()
    try:
        name_validator(name)
    except ValidationError:
        raise InvalidInput("Name the snapshot with 1-63 lowercase letters, digits and hyphens.") from None
    vm = vm_lock_for_action(vm=vm, action=Action.SNAPSHOT_CREATE, user=user)
    _require(vm, capabilities.SNAPSHOTS, "Snapshots")
    live = Snapshot.objects.filter(vm=vm, state__in=SNAPSHOT_LIVE_STATES)
    if live.filter(name=name).exists():
        raise Conflict(f"{vm.name} already has a snapshot called {name}.")
    if live.count() >= vm.plan.max_snapshots:
        raise Conflict(
            f"{vm.name} has {vm.plan.max_snapshots} snapshots, the most its plan {vm.plan.name} allows; "
            "delete one first.",
            code="snapshot_limit",
        )
    snapshot = Snapshot.objects.create(vm=vm, name=name, created_by=user, backend_ref="")
    snapshot.backend_ref = f"cp-{snapshot.pk}"
    Snapshot.objects.filter(pk=snapshot.pk).update(backend_ref=snapshot.backend_ref)
    return vm_operation_start(
        vm=vm,
        action=Action.SNAPSHOT_CREATE,
        user=user,
        request=request,
        params={"snapshot": snapshot.pk, "ref": snapshot.backend_ref},
        details={"snapshot": snapshot.pk, "name": name},
    )


def _snapshot_action(*, snapshot: Snapshot, action: str, user, request, next_state: str | None) -> Operation:
    vm = vm_lock_for_action(vm=snapshot.vm, action=action, user=user)
    _require(vm, capabilities.SNAPSHOTS, "Snapshots")
    snapshot = Snapshot.objects.select_for_update(no_key=True, of=("self",)).get(pk=snapshot.pk)
    if snapshot.state != SnapshotState.AVAILABLE:
        raise Conflict(f"Snapshot {snapshot.name} is {snapshot.get_state_display().lower()}.")
    if next_state:
        Snapshot.objects.filter(pk=snapshot.pk).update(state=next_state)
    return vm_operation_start(
        vm=vm,
        action=action,
        user=user,
        request=request,
        params={"snapshot": snapshot.pk, "ref": snapshot.backend_ref},
        details={"snapshot": snapshot.pk, "name": snapshot.name},
    )


@transaction.atomic
def vm_snapshot_revert(*, snapshot: Snapshot, user=None, request=None) -> Operation:
    """Roll the VM's disk back to ``snapshot`` (changes since are lost)."""
    return _snapshot_action(
        snapshot=snapshot, action=Action.SNAPSHOT_REVERT, user=user, request=request, next_state=None
    )


@transaction.atomic
def vm_snapshot_delete(*, snapshot: Snapshot, user=None, request=None) -> Operation:
    return _snapshot_action(
        snapshot=snapshot,
        action=Action.SNAPSHOT_DELETE,
        user=user,
        request=request,
        next_state=SnapshotState.DELETING,
    )


# -- resize ---------------------------------------------------------------------------------


def resize_preview(*, vm: VirtualMachine, plan: Plan) -> dict:
    """What resizing ``vm`` to ``plan`` would do, or why it cannot (shown before confirming).
    Keys: ``allowed``, ``reason``, ``changed`` and ``restart`` (a running guest is restarted)."""
    old = vm.plan
    changed = {label for field, label in RESIZE_DIMENSIONS if getattr(plan, field) != getattr(old, field)}
    reason = ""
    if plan.pk == old.pk:
        reason = f"{vm.name} is already on plan {plan.name}."
    elif plan.guest_type != old.guest_type:
        reason = f"Plan {plan.name} is for another guest type ({plan.get_guest_type_display().lower()})."
    elif plan.disk_gib < old.disk_gib:
        reason = f"Plan {plan.name} has a smaller disk ({plan.disk_gib} GiB < {old.disk_gib} GiB); disks can only grow."
    elif not plan.active:
        reason = f"Plan {plan.name} is no longer offered."
    restart = capabilities.resize_needs_restart(vm.hypervisor.kind, changed=changed)
    return {"allowed": not reason, "reason": reason, "changed": sorted(changed), "restart": restart}


@transaction.atomic
def vm_resize(*, vm: VirtualMachine, plan: Plan, user=None, request=None) -> Operation:
    """Move ``vm`` to ``plan`` (same guest type, disk only grows). The quota for the increase
    is reserved now; day2_writeback gives back a decrease on success and the reservation on
    failure, so a failed resize leaves the VM and the quota on the old plan."""
    vm = vm_lock_for_action(vm=vm, action=Action.RESIZE, user=user)
    _require(vm, capabilities.RESIZE, "Resizes")
    preview = resize_preview(vm=vm, plan=plan)
    if not preview["allowed"]:
        raise Conflict(preview["reason"], code="resize_refused")
    old = vm.plan
    delta = {field: getattr(plan, field) - getattr(old, field) for field, _ in RESIZE_DIMENSIONS}
    reserved = {field: max(0, value) for field, value in delta.items()}
    if vm.quota_held:
        quota_adjust(project=vm.project, **reserved)
    else:
        reserved = {field: 0 for field in reserved}
    return vm_operation_start(
        vm=vm,
        action=Action.RESIZE,
        user=user,
        request=request,
        params={
            "from_plan": old.pk,
            "plan": plan.pk,
            "plan_name": plan.name,
            "to": {field: getattr(plan, field) for field, _ in RESIZE_DIMENSIONS},
            "reserved": reserved,
            "release_on_success": {field: max(0, -value) for field, value in delta.items()},
            "restart": preview["restart"],
        },
        details={"from_plan": old.name, "to_plan": plan.name, "restart": preview["restart"]},
    )


# -- rebuild --------------------------------------------------------------------------------


@transaction.atomic
def vm_rebuild(
    *,
    vm: VirtualMachine,
    image: Image,
    ssh_public_key: str | None = None,
    user_data: str | None = None,
    user=None,
    request=None,
) -> Operation:
    """Replace the VM's disk from ``image`` (same guest type, offered on its hypervisor), with a
    new SSH key / user data when given. The VM keeps its id, addresses and plan; everything on
    the old disk is lost (callers ask for a fresh two-factor code first)."""
    vm = vm_lock_for_action(vm=vm, action=Action.REBUILD, user=user)
    _require(vm, capabilities.REBUILD, "Rebuilds")
    if not image.active or image.guest_type != vm.plan.guest_type:
        raise Conflict(f"Image {image.name} cannot be used for {vm.name} (another guest type, or withdrawn).")
    if not ImageReference.objects.filter(image=image, hypervisor=vm.hypervisor_id).exists():
        raise Conflict(f"Image {image.name} is not offered on {vm.hypervisor.region or vm.hypervisor.name}.")
    params = {"image": image.pk}
    if ssh_public_key is not None:
        params["ssh_public_key"] = ssh_public_key
    if user_data is not None:
        params["user_data"] = user_data
    return vm_operation_start(
        vm=vm,
        action=Action.REBUILD,
        user=user,
        request=request,
        params=params,
        details={"image": image.name, "new_key": "ssh_public_key" in params, "new_user_data": "user_data" in params},
    )

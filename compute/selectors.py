import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Membership, Project, User
from controlplane.compiled import CompiledQuery
from controlplane.errors import NotFound

from . import ipam
from .choices import (
    ACTIVE_OPERATION_STATES,
    VM_LIVE_STATUSES,
    Action,
    AllocationState,
    OperationState,
    RequestStatus,
    SnapshotState,
    VMStatus,
)
from .models import (
    Hypervisor,
    Image,
    ImageReference,
    IPAllocation,
    IPPool,
    Operation,
    Plan,
    ProjectQuota,
    ReverseDNSRecord,
    Snapshot,
    TenantBinding,
    VirtualMachine,
    VMBatch,
    VMRequest,
)


def hypervisor_queues(*, include_disabled: bool = False) -> list[str]:
    hypervisors = Hypervisor.objects.all() if include_disabled else Hypervisor.objects.filter(enabled=True)
    return sorted(set(hypervisors.values_list("queue", flat=True)))


def assigned_addresses_prefetch() -> Prefetch:
    """``vm.assigned_addresses``: the pool addresses a VM holds (IPv4 first), in one query per list."""
    return Prefetch(
        "ip_allocations",
        queryset=_with_ptr(IPAllocation.objects.filter(state=AllocationState.ASSIGNED).order_by("family", "offset")),
        to_attr="assigned_addresses",
    )


# What a VM row shows of each address it holds, in this order (VirtualMachineSerializer's "addresses").
ADDRESS_FIELDS = ("address", "family", "ptr", "ptr_pending", "extra")


def assigned_addresses_by_vm(*, vm_ids: list[int]) -> dict[int, list[dict]]:
    """The addresses each VM holds, as ``assigned_addresses_prefetch`` reads them (assigned,
    IPv4 first, each with its PTR), as the rows the API shows: one statement for a page of VMs,
    written out (no queryset to build and compile per request) and no model instances
    (issue 25). A PTR record's address is unique: the join is the ``_with_ptr`` subqueries."""
    if not vm_ids:
        return {}
    allocation, record = IPAllocation._meta.db_table, ReverseDNSRecord._meta.db_table
    sql = (
        f'SELECT a."vm_id", a."address", a."family", COALESCE(r."ptr", %s), COALESCE(r."pending", %s), a."extra" '
        f'FROM "{allocation}" a LEFT JOIN "{record}" r ON r."address" = a."address" '
        f'WHERE a."state" = %s AND a."vm_id" IN ({", ".join(["%s"] * len(vm_ids))}) '
        f'ORDER BY a."family", a."offset"'
    )
    by_vm: dict[int, list[dict]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, ["", False, AllocationState.ASSIGNED.value, *vm_ids])
        for vm_id, address, family, ptr, pending, extra in cursor.fetchall():
            row = {"address": address, "family": family, "ptr": ptr, "ptr_pending": bool(pending), "extra": bool(extra)}
            by_vm.setdefault(vm_id, []).append(row)
    return by_vm


def _project_ids_of(user: User | int) -> QuerySet:
    """The user's projects as a subquery: filtering on it needs no join through memberships,
    so no DISTINCT and a cheap COUNT for pagination (issue 25)."""
    return Membership.objects.filter(user=user).values("project_id")


def _with_ptr(queryset: QuerySet[IPAllocation]) -> QuerySet[IPAllocation]:
    """Each address's reverse-DNS name (``ptr``, "" when none) and ``ptr_pending`` (not yet in
    PowerDNS), read in the same query."""
    record = ReverseDNSRecord.objects.filter(address=OuterRef("address"))
    return queryset.annotate(
        ptr=Coalesce(Subquery(record.values("ptr")[:1]), Value("")),
        ptr_pending=Coalesce(Subquery(record.values("pending")[:1]), Value(False)),
    )


def vm_list_for_user(*, user: User) -> QuerySet[VirtualMachine]:
    return (
        vms_visible(user_id=user.pk)
        .select_related("plan", "image", "hypervisor", "project")
        .prefetch_related(assigned_addresses_prefetch())
    )


def vms_visible(*, user_id: int | None) -> QuerySet[VirtualMachine]:
    """The VMs of the projects user ``user_id`` is a member of (None: every VM, for staff),
    nothing joined or prefetched: the API list's page reads its columns as values (issue 25)."""
    if user_id is None:
        return VirtualMachine.objects.all()
    return VirtualMachine.objects.filter(project_id__in=_project_ids_of(user_id))


def vm_get_for_user(*, user: User, pk: int) -> VirtualMachine | None:
    """One VM the user may see (a member of its project; staff: any), with its plan and project.
    For endpoints that need the VM's id and plan, not a list row: no DISTINCT (one membership
    per project and user, ``membership_unique_user``), no address prefetch: one light query."""
    queryset = VirtualMachine.objects.select_related("plan", "project")
    if not user.is_staff:
        queryset = queryset.filter(project__memberships__user=user)
    return queryset.filter(pk=pk).first()


def vm_request_list_for_user(*, user: User) -> QuerySet[VMRequest]:
    return VMRequest.objects.filter(project_id__in=_project_ids_of(user)).select_related(
        "plan", "image", "hypervisor", "project", "requester", "decided_by"
    )


# What a batch's progress counts, each from its requests (and their VMs): name → filter.
BATCH_PROGRESS = {
    "pending": Q(requests__status=RequestStatus.PENDING),
    "refused": Q(requests__status__in=(RequestStatus.REJECTED, RequestStatus.CANCELLED)),
    "building": Q(requests__vm__status=VMStatus.BUILDING),
    "active": Q(requests__vm__status=VMStatus.ACTIVE),
    "stopped": Q(requests__vm__status=VMStatus.STOPPED),
    "failed": Q(requests__vm__status=VMStatus.ERROR),
    "deleted": Q(requests__vm__status=VMStatus.DELETED),
}


def vm_batch_with_progress(queryset: QuerySet[VMBatch]) -> QuerySet[VMBatch]:
    """Batches annotated with one count per ``BATCH_PROGRESS`` entry (one query for a page)."""
    counts = {name: Count("requests", filter=condition) for name, condition in BATCH_PROGRESS.items()}
    return (
        queryset.select_related("project", "plan", "image", "hypervisor", "requester")
        .annotate(**counts)
        .order_by("-created_at", "-id")
    )


def vm_batch_progress(batch: VMBatch) -> dict[str, int]:
    """``{"requested": N, "pending": .., "building": .., "active": .., ...}`` of an annotated batch."""
    return {"requested": batch.count, **{name: getattr(batch, name) for name in BATCH_PROGRESS}}


def vm_batch_list_for_user(*, user: User) -> QuerySet[VMBatch]:
    """The batches of the user's projects (every batch for an operator), with progress."""
    batches = VMBatch.objects.all() if user.is_staff else VMBatch.objects.filter(project__memberships__user=user)
    return vm_batch_with_progress(batches)


def operation_list_for_user(*, user: User) -> QuerySet[Operation]:
    return Operation.objects.filter(project_id__in=_project_ids_of(user)).select_related(
        "vm", "hypervisor", "requested_by"
    )


def operation_active_for_vm(*, vm: VirtualMachine) -> Operation | None:
    return vm.operations.filter(state__in=ACTIVE_OPERATION_STATES).first()


# -- portal ---------------------------------------------------------------------


def vm_list_for_project(*, project, include_deleted: bool = False) -> QuerySet[VirtualMachine]:
    vms = VirtualMachine.objects.filter(project=project).select_related("plan", "image", "hypervisor")
    return vms if include_deleted else vms.exclude(status=VMStatus.DELETED)


def vm_get_for_project(*, project, pk: int) -> VirtualMachine:
    """A VM of this project; any other VM (another project's, or none) is a 404."""
    vm = (
        VirtualMachine.objects.filter(project=project, pk=pk)
        .select_related("plan", "image", "hypervisor")
        .prefetch_related(assigned_addresses_prefetch())
        .first()
    )
    if vm is None:
        raise NotFound("No such virtual machine.")
    return vm


def vm_status_counts(*, project) -> dict[str, int]:
    """Live VMs of the project by status, plus ``busy`` (an operation in progress): one query."""
    live = Q(project=project) & ~Q(status=VMStatus.DELETED)
    row = VirtualMachine.objects.filter(live).aggregate(
        total=Count("pk"),
        busy=Count("pk", filter=Q(task_state__isnull=False)),
        **{status: Count("pk", filter=Q(status=status)) for status in VM_LIVE_STATUSES},
    )
    return row


def vm_list_for_snapshot_reconcile(*, hypervisor: Hypervisor) -> list[tuple[int, str]]:
    """(id, backend id) of live VMs on the hypervisor with no operation in progress."""
    return list(
        VirtualMachine.objects.filter(hypervisor=hypervisor, task_state__isnull=True)
        .exclude(status__in=(VMStatus.DELETED, VMStatus.BUILDING))
        .exclude(backend_id="")
        .values_list("id", "backend_id")
    )


def snapshot_list_for_vm(*, vm: VirtualMachine, include_deleted: bool = False) -> QuerySet[Snapshot]:
    snapshots = Snapshot.objects.filter(vm=vm)
    return snapshots if include_deleted else snapshots.exclude(state=SnapshotState.DELETED)


def operation_list_for_vm(*, vm: VirtualMachine, limit: int = 20) -> list[Operation]:
    return list(vm.operations.select_related("requested_by").order_by("-created_at", "-id")[:limit])


def operation_recent_for_project(*, project, limit: int = 10) -> list[Operation]:
    return list(
        Operation.objects.filter(project=project).select_related("vm", "requested_by").order_by("-created_at")[:limit]
    )


def vm_request_list_for_project(*, project) -> QuerySet[VMRequest]:
    return VMRequest.objects.filter(project=project).select_related(
        "plan", "image", "hypervisor", "requester", "decided_by", "vm"
    )


def vm_request_get_for_project(*, project, pk: int) -> VMRequest:
    vm_request = VMRequest.objects.filter(project=project, pk=pk).select_related("project", "plan").first()
    if vm_request is None:
        raise NotFound("No such request.")
    return vm_request


def plan_list_offered() -> QuerySet[Plan]:
    return Plan.objects.filter(active=True)


def image_list_offered() -> QuerySet[Image]:
    """Active images with the enabled hypervisors that have them (prefetched)."""
    refs = ImageReference.objects.filter(hypervisor__enabled=True).select_related("hypervisor")
    return Image.objects.filter(active=True).prefetch_related(Prefetch("references", queryset=refs))


def hypervisor_list_offered() -> QuerySet[Hypervisor]:
    return Hypervisor.objects.filter(enabled=True)


def quota_excess(*, quota: ProjectQuota, plan: Plan, count: int = 1) -> tuple[str, int, int] | None:
    """The first limit ``count`` more VMs of ``plan`` would pass: (what, would be, limit); None if they fit."""
    checks = [
        ("VMs", quota.used_vms + count, quota.max_vms),
        ("vCPUs", quota.used_vcpus + count * plan.vcpus, quota.max_vcpus),
        ("MiB of memory", quota.used_memory_mib + count * plan.memory_mib, quota.max_memory_mib),
        ("GiB of disk", quota.used_disk_gib + count * plan.disk_gib, quota.max_disk_gib),
    ]
    return next(((label, wanted, limit) for label, wanted, limit in checks if wanted > limit), None)


def quota_shortfall(*, project, plan: Plan) -> str | None:
    """Why one more VM of ``plan`` would not fit the project's quota (None: it fits).
    A preview only: the request service checks again under a lock."""
    quota = ProjectQuota.objects.filter(project=project).first() or ProjectQuota(project=project)
    excess = quota_excess(quota=quota, plan=plan)
    if excess is None:
        return None
    label, wanted, limit = excess
    return f"Project {project.name} may use {limit} {label} and this VM would make {wanted}."


# -- operators ------------------------------------------------------------------


@dataclass(frozen=True)
class Attention:
    """What needs an operator: counts and the first few of each (admin landing page)."""

    pending_requests: list
    pending_count: int
    failed_operations: list
    failed_count: int
    drifted_vms: list
    drifted_count: int
    suspended_projects: list
    suspended_count: int
    maintenance_hypervisors: list
    unknown_guests: int


def attention_summary(*, failed_within: timedelta = timedelta(days=7), show: int = 5) -> Attention:
    """Pending requests (oldest first), operations that failed recently and were
    not retried, VMs the reconciler found missing or lost, suspended projects,
    hypervisors in maintenance. A bounded number of queries."""
    pending = VMRequest.objects.filter(status=RequestStatus.PENDING).select_related("project", "requester", "plan")
    failed = Operation.objects.filter(
        state=OperationState.FAILED, finished_at__gte=timezone.now() - failed_within
    ).select_related("vm", "project")
    drifted = (
        VirtualMachine.objects.filter(Q(missing_since__isnull=False) | Q(lost_at__isnull=False))
        .exclude(status=VMStatus.DELETED)
        .select_related("project", "hypervisor")
    )
    suspended = Project.objects.filter(suspended_at__isnull=False)
    hypervisors = list(Hypervisor.objects.filter(enabled=True).only("name", "maintenance", "drift", "region"))
    return Attention(
        pending_requests=list(pending.order_by("created_at")[:show]),
        pending_count=pending.count(),
        failed_operations=list(failed.order_by("-finished_at")[:show]),
        failed_count=failed.count(),
        drifted_vms=list(drifted.order_by("-lost_at", "missing_since")[:show]),
        drifted_count=drifted.count(),
        suspended_projects=list(suspended.order_by("-suspended_at")[:show]),
        suspended_count=suspended.count(),
        maintenance_hypervisors=[h for h in hypervisors if h.maintenance],
        unknown_guests=sum(len(h.drift.get("unknown", [])) for h in hypervisors),
    )


# --- Reads for /metrics (controlplane/metrics.py) ---------------------------


def operation_stats(*, finished_since: datetime, created_since: datetime, latency_bounds: tuple) -> list[dict]:
    """Per action and state: every pending and running operation, and those
    finished since ``finished_since`` among those created since
    ``created_since`` (both bounds keep the query on the state and created_at
    indexes; nothing scans the whole table). Each row: ``action``, ``state``,
    ``total``, ``retried`` (more than one attempt), ``extra`` (attempts beyond
    the first, summed; None when none), ``timed`` (with started_at and
    finished_at), ``seconds`` (their summed run time, a timedelta) and ``le``
    (how many timed ones ran at most each of ``latency_bounds`` seconds)."""
    timed = Q(started_at__isnull=False, finished_at__isnull=False)
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{i}": Count("id", filter=timed & Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(latency_bounds)
    }
    recent = Q(finished_at__gte=finished_since, created_at__gte=created_since)
    rows = (
        Operation.objects.filter(Q(state__in=ACTIVE_OPERATION_STATES) | recent)
        .annotate(duration=duration)
        .values("action", "state")
        .annotate(
            total=Count("id"),
            retried=Count("id", filter=Q(attempts__gt=1)),
            extra=Sum(F("attempts") - 1, filter=Q(attempts__gt=1)),
            timed=Count("id", filter=timed),
            seconds=Sum("duration", filter=timed),
            **buckets,
        )
        .order_by("action", "state")
    )
    return [
        {**{k: v for k, v in row.items() if not k.startswith("le_")}, "le": [row[k] for k in buckets]} for row in rows
    ]


def operation_oldest() -> dict[str, datetime | None]:
    """When the oldest pending operation was created and the oldest running one started."""
    fields = {OperationState.PENDING: "created_at", OperationState.RUNNING: "started_at"}
    return {
        state: Operation.objects.filter(state=state).aggregate(at=Min(field))["at"] for state, field in fields.items()
    }


def operation_lease_expired_count(*, now: datetime) -> int:
    """Running operations whose worker lease passed before ``now``."""
    return Operation.objects.filter(state=OperationState.RUNNING, lease_until__lt=now).count()


def vm_counts_by_hypervisor() -> list[dict]:
    """Per hypervisor name and VM status: ``total``, ``missing`` (the reconciler
    did not find them, still in grace) and ``lost``."""
    return list(
        VirtualMachine.objects.values("hypervisor__name", "status")
        .annotate(
            total=Count("id"),
            missing=Count("id", filter=Q(missing_since__isnull=False, lost_at__isnull=True)),
            lost=Count("id", filter=Q(lost_at__isnull=False)),
        )
        .order_by()
    )


# -- the engine (workers/engine.py) ----------------------------------------------------


def _claimed(operation_id: int, token: uuid.UUID):
    return Operation.objects.select_related("vm", "hypervisor", "project").filter(
        pk=operation_id, state=OperationState.RUNNING, claim_token=token
    )


_CLAIMED = CompiledQuery(_claimed, probe=(0, uuid.UUID(int=0)))


def operation_get_claimed(*, operation_id: int, token: str) -> Operation | None:
    """The running operation this claim token still holds; None when it ended or was reclaimed.
    Every poll of every operation reads it: compiled to SQL once per process."""
    try:
        claim = uuid.UUID(str(token))
    except ValueError:
        return None
    return _CLAIMED.first(operation_id, claim)


def operation_latest_create(*, vm: VirtualMachine) -> Operation | None:
    return vm.operations.filter(action=Action.CREATE).order_by("-created_at").first()


def image_reference_for_vm(*, vm: VirtualMachine) -> ImageReference | None:
    """How the VM's hypervisor names the VM's image (None: it does not have it)."""
    return ImageReference.objects.select_related("image").filter(image=vm.image_id, hypervisor=vm.hypervisor_id).first()


def image_list_for_rebuild(*, vm: VirtualMachine) -> QuerySet[Image]:
    """Images a VM can be rebuilt from: active, its guest type, offered on its hypervisor."""
    return Image.objects.filter(
        active=True, guest_type=vm.plan.guest_type, references__hypervisor=vm.hypervisor_id
    ).distinct()


def image_reference_get(*, image_id: int, hypervisor: Hypervisor) -> ImageReference | None:
    return ImageReference.objects.select_related("image").filter(image_id=image_id, hypervisor=hypervisor).first()


def tenant_binding_ready_for_vm(*, vm: VirtualMachine) -> TenantBinding | None:
    return TenantBinding.objects.filter(project=vm.project_id, hypervisor=vm.hypervisor_id, ready=True).first()


def hypervisor_list_to_reconcile() -> QuerySet[Hypervisor]:
    return Hypervisor.objects.filter(enabled=True, maintenance=False)


def hypervisor_get(*, pk: int) -> Hypervisor:
    return Hypervisor.objects.get(pk=pk)


def vm_get_with_hypervisor(*, pk: int) -> VirtualMachine | None:
    return VirtualMachine.objects.select_related("hypervisor").filter(pk=pk).first()


# -- IP address management ---------------------------------------------------------------------


def ip_allocation_list_for_vm(*, vm: VirtualMachine) -> list[IPAllocation]:
    return list(
        _with_ptr(
            vm.ip_allocations.filter(state=AllocationState.ASSIGNED).select_related("pool").order_by("family", "offset")
        )
    )


def reverse_dns_record(*, record_id: int) -> ReverseDNSRecord:
    return ReverseDNSRecord.objects.get(pk=record_id)


def reverse_dns_by_address(*, addresses: list[str]) -> dict[str, ReverseDNSRecord]:
    """The PTR records of these addresses, by address (one query)."""
    return {record.address: record for record in ReverseDNSRecord.objects.filter(address__in=addresses)}


def vm_network_config(*, vm: VirtualMachine) -> dict:
    """Static addressing for the guest (VMSpec.network); {} when no pool gave it addresses.
    Additional IPs (plan add-on) are not part of it: the user configures them in the guest."""
    allocations = [a for a in ip_allocation_list_for_vm(vm=vm) if not a.extra]
    if not allocations:
        return {}
    pool = allocations[0].pool
    config: dict = {"dns": list(pool.dns_servers), "network": pool.network}
    for allocation in allocations:
        prefix = pool.ipv4_prefix if allocation.family == 4 else pool.ipv6_prefix
        gateway = pool.ipv4_gateway if allocation.family == 4 else pool.ipv6_gateway
        config[f"ipv{allocation.family}"] = {
            "address": allocation.address,
            "prefix_length": int(prefix.rsplit("/", 1)[1]),
            "gateway": gateway,
        }
    return config


def ip_pool_usage(*, pool: IPPool) -> dict:
    """Per family: capacity (never enumerated), used (assigned), reserved, cooling."""
    counts = {
        (row["family"], row["state"]): row["n"]
        for row in pool.allocations.values("family", "state").annotate(n=Count("id")).order_by()
    }
    usage = {}
    for layout in ipam.pool_layouts(pool):
        used = {state: counts.get((layout.family, state), 0) for state in AllocationState.values}
        capacity = layout.capacity()
        taken = sum(used.values())
        usage[layout.family] = used | {
            "capacity": capacity,
            "free": max(capacity - taken, 0),
            "percent": (100 * taken / capacity) if capacity else 100.0,
        }
    return usage

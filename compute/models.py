import ipaddress
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .choices import (
    ACTIVE_OPERATION_STATES,
    Action,
    AllocationState,
    ConsoleProtocol,
    GuestType,
    HypervisorKind,
    OperationState,
    PowerState,
    RequestStatus,
    SnapshotState,
    VMStatus,
)
from .fields import EncryptedJSONField

name_validator = RegexValidator(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    "Use 1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
)
queue_validator = RegexValidator(r"^[a-z0-9][a-z0-9._-]{0,62}$", "Lowercase letters, digits, '.', '_' and '-'.")


class Hypervisor(models.Model):
    """A hypervisor (or cloud region) we drive, and the worker queue serving it."""

    name = models.CharField(max_length=63, unique=True, validators=[name_validator])
    kind = models.CharField(max_length=16, choices=HypervisorKind.choices)
    region = models.CharField(max_length=63, blank=True, help_text="Shown to users when they choose where to run.")
    queue = models.CharField(
        max_length=63,
        validators=[queue_validator],
        help_text="Celery queue its operations go to; a worker unit serves it (controlplane-worker@<queue>).",
    )
    connection = models.JSONField(default=dict, blank=True, help_text="Non-secret connection settings (URL, node...).")
    credentials = EncryptedJSONField(blank=True, default=dict, help_text="Encrypted at rest; never shown back.")
    enabled = models.BooleanField(default=True, help_text="Offered for new VMs.")
    maintenance = models.BooleanField(default=False, help_text="Operations wait (stay pending) while set.")
    max_concurrent_operations = models.PositiveIntegerField(default=50, validators=[MinValueValidator(1)])
    build_timeout_seconds = models.PositiveIntegerField(default=1800, help_text="A create running longer fails.")
    capacity_vcpus = models.PositiveIntegerField(default=0, help_text="vCPUs plans may allocate here; 0: no limit.")
    capacity_memory_mib = models.PositiveIntegerField(
        default=0, help_text="Memory (MiB) plans may allocate; 0: no limit."
    )
    capacity_disk_gib = models.PositiveIntegerField(default=0, help_text="Disk (GiB) plans may allocate; 0: no limit.")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check = models.JSONField(default=dict, blank=True)
    drift = models.JSONField(default=dict, blank=True, help_text="Last reconciliation's findings (unknown guests).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Plan(models.Model):
    """A size and its price. Prices are per hour, before GST."""

    name = models.CharField(max_length=63, unique=True)
    vcpus = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    memory_mib = models.PositiveIntegerField(validators=[MinValueValidator(64)])
    disk_gib = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    guest_type = models.CharField(max_length=16, choices=GuestType.choices, default=GuestType.VM)
    price_hourly_running = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0"))
    price_hourly_stopped = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0"))
    included_transfer_gb = models.PositiveIntegerField(
        default=0, help_text="Data transfer (in + out, GB of 10^9 bytes) per month included; 0: none."
    )
    sac_code = models.CharField(max_length=8, default="998315", help_text="GST service accounting code.")
    gst_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("18.00"), help_text="Percent.")
    requires_approval = models.BooleanField(default=True)
    hard_stop_after_seconds = models.PositiveIntegerField(
        default=120, help_text="Graceful shutdown waits this long before powering off; 0 never forces."
    )
    max_snapshots = models.PositiveSmallIntegerField(default=3, help_text="Snapshots a VM on this plan may keep.")
    max_backups = models.PositiveSmallIntegerField(
        default=7, help_text="Backups of each kind (manual, scheduled) a VM on this plan may keep; 0: no backups."
    )
    max_extra_ips = models.PositiveSmallIntegerField(
        default=0, help_text="Additional IP addresses a VM on this plan may add (priced add-on); 0: not offered."
    )
    price_hourly_extra_ip = models.DecimalField(
        max_digits=12, decimal_places=4, default=Decimal("0"), help_text="Per additional IP and hour held, before GST."
    )
    active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self):
        return self.name


class Image(models.Model):
    """An operating system image; each hypervisor knows it by its own reference."""

    name = models.CharField(max_length=100, unique=True)
    os_name = models.CharField(max_length=100)
    guest_type = models.CharField(max_length=16, choices=GuestType.choices, default=GuestType.VM)
    cloud_init = models.BooleanField(default=True, help_text="Accepts SSH keys and user data through cloud-init.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ImageReference(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="references")
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.CASCADE, related_name="image_references")
    ref = models.CharField(max_length=255, help_text="Template VMID, image id, or base volume on this hypervisor.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "hypervisor"], name="imageref_unique")]

    def __str__(self):
        return f"{self.image} on {self.hypervisor}: {self.ref}"


class ProjectQuota(models.Model):
    """Limits and reservations of one project. Changed only under a row lock."""

    project = models.OneToOneField("accounts.Project", on_delete=models.CASCADE, related_name="quota")
    max_vms = models.PositiveIntegerField(default=10)
    max_vcpus = models.PositiveIntegerField(default=32)
    max_memory_mib = models.PositiveIntegerField(default=65536)
    max_disk_gib = models.PositiveIntegerField(default=1000)
    used_vms = models.PositiveIntegerField(default=0)
    used_vcpus = models.PositiveIntegerField(default=0)
    used_memory_mib = models.PositiveIntegerField(default=0)
    used_disk_gib = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"quota of {self.project}"


class VMBatch(models.Model):
    """N VM requests made at once from one plan and image (a class lab: ``lab-{n}``).

    Accepted in one transaction (quota reserved for all or none); each request then
    follows the usual path (approval if the plan needs it, one create Operation per
    VM). Progress is counted from its requests and their VMs (``selectors.vm_batch_progress``)."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="vm_batches")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="vm_batches")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT)
    image = models.ForeignKey(Image, on_delete=models.PROTECT)
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.PROTECT)
    name_pattern = models.CharField(max_length=63, help_text="Names of the VMs; {n} is replaced by 1, 2, 3...")
    first_number = models.PositiveIntegerField(default=1)
    count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "VM batch"
        verbose_name_plural = "VM batches"

    def __str__(self):
        return f"{self.name_pattern} ×{self.count}"


class VMRequest(models.Model):
    """A user's request for a VM; approval creates the VM and its create operation."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="vm_requests")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="vm_requests")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT)
    image = models.ForeignKey(Image, on_delete=models.PROTECT)
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.PROTECT)
    batch = models.ForeignKey(VMBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests")
    name = models.CharField(max_length=63, validators=[name_validator])
    ssh_public_key = models.TextField(blank=True)
    user_data = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"],
                condition=Q(status=RequestStatus.PENDING),
                name="vmrequest_pending_name_unique",
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.get_status_display()})"


class VirtualMachine(models.Model):
    """A guest. ``status`` is stable and user-visible, ``task_state`` the action in
    progress, ``power_state`` what the hypervisor last said (it is the authority)."""

    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="vms")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="vms")
    request = models.OneToOneField(VMRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="vm")
    name = models.CharField(max_length=63, validators=[name_validator])
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT)
    image = models.ForeignKey(Image, on_delete=models.PROTECT)
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.PROTECT, related_name="vms")
    ssh_public_key = models.TextField(blank=True)
    user_data = models.TextField(blank=True)
    backend_id = models.CharField(max_length=100, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=VMStatus.choices, default=VMStatus.BUILDING, db_index=True)
    task_state = models.CharField(max_length=16, choices=Action.choices, null=True, blank=True)
    power_state = models.CharField(max_length=16, choices=PowerState.choices, default=PowerState.UNKNOWN)
    ip_addresses = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    power_state_at = models.DateTimeField(null=True, blank=True, help_text="When the hypervisor last reported.")
    deleted_at = models.DateTimeField(null=True, blank=True)
    missing_since = models.DateTimeField(null=True, blank=True, help_text="First reconciliation that did not find it.")
    lost_at = models.DateTimeField(null=True, blank=True, help_text="Flagged as lost after the grace period.")
    quota_held = models.BooleanField(default=True, help_text="Its resources count against the project quota.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"], condition=~Q(status=VMStatus.DELETED), name="vm_live_name_unique"
            )
        ]
        indexes = [models.Index(fields=["hypervisor", "status"])]

    def __str__(self):
        return self.name


class VMStatusEvent(models.Model):
    """The confirmed timeline of a VM: what workers and the reconciler wrote back.
    Billing meters from it."""

    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="status_events")
    status = models.CharField(max_length=16, choices=VMStatus.choices)
    power_state = models.CharField(max_length=16, choices=PowerState.choices)
    at = models.DateTimeField(db_index=True)
    operation = models.ForeignKey("Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=32, help_text="worker, reconciler or operator.")
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="In force from ``at``."
    )

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["vm", "at"])]


class TenantBinding(models.Model):
    """A project's isolation on one hypervisor (OpenStack project, network, router...)."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="tenant_bindings")
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.CASCADE, related_name="tenant_bindings")
    ready = models.BooleanField(default=False)
    data = models.JSONField(default=dict, blank=True, help_text="Ids created on the hypervisor.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "hypervisor"], name="tenant_binding_unique")]


class Operation(models.Model):
    """One hypervisor-touching action, and the outbox row of its Celery task.

    Life: ``pending`` → (claimed by compare-and-swap) ``running`` → submit to the
    hypervisor, store the handle, poll → ``succeeded`` / ``failed``. A transient
    error sends it back to ``pending`` with ``next_attempt_at`` in the future.
    A running operation whose ``lease_until`` passed belonged to a dead worker:
    the reaper hands it back to ``pending`` and the next claim resumes polling
    its stored handle (or re-submits, which drivers make idempotent).
    """

    vm = models.ForeignKey(VirtualMachine, null=True, blank=True, on_delete=models.CASCADE, related_name="operations")
    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="operations")
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.PROTECT, related_name="operations")
    action = models.CharField(max_length=16, choices=Action.choices)
    state = models.CharField(max_length=16, choices=OperationState.choices, default=OperationState.PENDING)
    params = models.JSONField(default=dict, blank=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="operations"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    task_ref = models.CharField(max_length=255, blank=True, help_text="The hypervisor's task reference (UPID, id).")
    task_data = models.JSONField(default=dict, blank=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    progress_message = models.CharField(max_length=200, blank=True)
    poll_errors = models.PositiveSmallIntegerField(default=0, help_text="Consecutive transient errors while polling.")
    previous_status = models.CharField(max_length=16, choices=VMStatus.choices, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["vm"], condition=Q(state__in=ACTIVE_OPERATION_STATES), name="operation_one_active_per_vm"
            ),
            models.UniqueConstraint(
                fields=["project", "hypervisor"],
                condition=Q(state__in=ACTIVE_OPERATION_STATES, action=Action.PROVISION),
                name="operation_one_active_provision",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"]),
            models.Index(fields=["state", "lease_until"]),
            models.Index(fields=["hypervisor", "state"]),
        ]

    def __str__(self):
        target = self.vm.name if self.vm_id else self.project_id
        return f"{self.action} {target} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_OPERATION_STATES


class ConsoleSession(models.Model):
    """One browser console: a one-time token (only its SHA-256 is stored) and, once the
    console proxy consumed it, the session it opened. Single use is a guarded UPDATE of
    ``consumed_at`` (compute/services/console.py)."""

    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="console_sessions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_sessions")
    token_hash = models.CharField(max_length=64, unique=True)
    protocol = models.CharField(max_length=8, choices=ConsoleProtocol.choices, default=ConsoleProtocol.VNC)
    client_ip = models.GenericIPAddressField(null=True, blank=True, help_text="The address the token was issued to.")
    origin = models.CharField(max_length=255, help_text="The page origin the WebSocket must come from.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True, help_text="Why it was refused or how it ended.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self):
        return f"console of {self.vm} for {self.user}"


class IPPool(models.Model):
    """Addresses handed to VMs of one hypervisor (optionally one bridge/VLAN on it).

    Prefixes are stored as text and handled with ``ipaddress``; addresses are never
    enumerated: an allocation is an ``offset`` from the prefix's network address, and the
    next free one is found by walking the (few) taken offsets. See compute/services/ipam.py.
    """

    name = models.CharField(max_length=63, unique=True, validators=[name_validator])
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.PROTECT, related_name="ip_pools")
    network = models.CharField(max_length=63, blank=True, help_text="Bridge / VLAN / network name on the hypervisor.")
    ipv4_prefix = models.CharField(max_length=18, blank=True, help_text="e.g. 203.0.113.0/24")
    ipv4_gateway = models.CharField(max_length=15, blank=True)
    ipv6_prefix = models.CharField(max_length=43, blank=True, help_text="e.g. 2001:db8:10::/48")
    ipv6_gateway = models.CharField(max_length=39, blank=True)
    dns_servers = models.JSONField(default=list, blank=True, help_text="Resolvers given to guests.")
    excluded_ranges = models.JSONField(
        default=list, blank=True, help_text='Never handed out: ["203.0.113.1-203.0.113.9", ...].'
    )
    cooldown_seconds = models.PositiveIntegerField(
        default=86400, help_text="A deleted VM's address is handed out again only after this long."
    )
    active = models.BooleanField(default=True, help_text="New VMs take addresses from it.")
    ipv4_reverse_zone = models.CharField(
        max_length=255, blank=True, help_text="PowerDNS zone for the PTR records; blank: derived from the prefix."
    )
    ipv6_reverse_zone = models.CharField(
        max_length=255, blank=True, help_text="PowerDNS zone for the PTR records; blank: derived from the prefix."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["hypervisor", "name"]

    def __str__(self):
        return self.name


class IPAllocation(models.Model):
    """One address of a pool in use, reserved, or cooling down. Free addresses have no row.

    The unique constraint on (pool, family, offset) is what keeps two VMs from ever
    getting the same address, whatever the callers do.
    """

    pool = models.ForeignKey(IPPool, on_delete=models.PROTECT, related_name="allocations")
    family = models.PositiveSmallIntegerField(choices=[(4, "IPv4"), (6, "IPv6")])
    offset = models.BigIntegerField(help_text="Distance from the prefix's network address.")
    address = models.CharField(max_length=39)
    vm = models.ForeignKey(
        VirtualMachine, null=True, blank=True, on_delete=models.SET_NULL, related_name="ip_allocations"
    )
    state = models.CharField(max_length=16, choices=AllocationState.choices, default=AllocationState.ASSIGNED)
    extra = models.BooleanField(
        default=False, help_text="An additional IP the user added (billed); not in the guest config."
    )
    note = models.CharField(max_length=200, blank=True)
    cool_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pool", "family", "offset"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "family", "offset"], name="ip_allocation_unique"),
            models.UniqueConstraint(fields=["pool", "address"], name="ip_allocation_address_unique"),
        ]
        indexes = [models.Index(fields=["vm", "state"])]

    def __str__(self):
        return self.address


class ExtraIPHolding(models.Model):
    """A VM held an additional IP (plan add-on) from ``started_at`` until ``ended_at``: the timeline
    billing meters by the hour (billing/services/metering.py), like VMStatusEvent for the VM."""

    vm = models.ForeignKey(VirtualMachine, on_delete=models.PROTECT, related_name="extra_ip_holdings")
    address = models.CharField(max_length=39)
    allocation = models.ForeignKey(IPAllocation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    metered_until = models.DateTimeField(help_text="Billing has metered every second before this.")

    class Meta:
        ordering = ["vm", "started_at"]
        indexes = [models.Index(fields=["metered_until"])]

    def __str__(self):
        return f"{self.address} on {self.vm_id}"


class ReverseDNSRecord(models.Model):
    """The PTR record one address should have in PowerDNS: desired state and its delivery (an outbox).

    Every change bumps ``version`` and sets ``pending``; workers/rdns.py writes the RRset
    (REPLACE, or DELETE when ``ptr`` is empty) under a short lease (one writer at a time, no
    row lock held over HTTP) and clears ``pending`` only if ``version`` is still the one it
    wrote; otherwise it writes the newer state before letting go. A row outlives its
    address's allocation, so a released address's PTR is removed even after that row is gone.
    """

    address = models.CharField(max_length=39, unique=True)
    zone = models.CharField(max_length=255, help_text="The reverse zone in PowerDNS (absolute name).")
    ptr = models.CharField(max_length=255, blank=True, help_text="Target host name with trailing dot; empty: none.")
    vm = models.ForeignKey(
        VirtualMachine, null=True, blank=True, on_delete=models.SET_NULL, related_name="reverse_dns_records"
    )
    custom = models.BooleanField(default=False, help_text="Set by the user (not the operator's default).")
    version = models.PositiveIntegerField(default=1)
    applied_version = models.PositiveIntegerField(default=0)
    pending = models.BooleanField(default=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed deliveries of the current version.")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A worker is writing it until then.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["address"]
        indexes = [models.Index(fields=["pending", "next_attempt_at"])]

    def __str__(self):
        return f"{self.address} -> {self.ptr or '(none)'}"

    @property
    def owner(self) -> str:
        """The PTR record's own name (``5.113.0.203.in-addr.arpa.``)."""
        return ipaddress.ip_address(self.address).reverse_pointer + "."


class Snapshot(models.Model):
    """A named point-in-time copy of a VM's disk on its hypervisor (``backend_ref`` there).
    Created, reverted to and deleted only by operations (compute/services/day2.py)."""

    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="snapshots")
    name = models.CharField(max_length=63, validators=[name_validator])
    state = models.CharField(max_length=16, choices=SnapshotState.choices, default=SnapshotState.CREATING)
    backend_ref = models.CharField(max_length=100, help_text="Its name on the hypervisor (cp-<id> or an image id).")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    missing_since = models.DateTimeField(null=True, blank=True, help_text="Reconciliation no longer found it.")
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="When its delete was confirmed (metering).")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["vm", "name"], condition=~Q(state="deleted"), name="snapshot_live_name_unique"
            )
        ]

    def __str__(self):
        return f"{self.vm} @ {self.name}"


from .backup_models import Backup, BackupSchedule  # noqa: E402, F401  (a separate module, like metrics)
from .metrics_models import (  # noqa: E402, F401  (a separate module; registered with the app here)
    VMAlertEvent,
    VMAlertRule,
    VMMetricCursor,
    VMMetricRollup,
    VMMetricSample,
    VMTransfer,
)

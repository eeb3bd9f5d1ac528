"""States of the compute domain. One comment per value; named groups below."""

from django.db import models


class HypervisorKind(models.TextChoices):
    SIMULATOR = "simulator", "Simulator"  # built-in simulated hypervisor (embedded default, tests)
    PROXMOX = "proxmox", "Proxmox VE"  # proxmoxer, QEMU VMs and LXC containers
    OPENSTACK = "openstack", "OpenStack"  # openstacksdk, Nova servers
    LIBVIRT = "libvirt", "libvirt / KVM"  # libvirt-python, QEMU/KVM domains


class GuestType(models.TextChoices):
    VM = "vm", "Virtual machine"  # full virtual machine
    CONTAINER = "container", "Container"  # system container (Proxmox LXC)


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"  # waiting for an operator
    APPROVED = "approved", "Approved"  # VM and its create operation exist
    REJECTED = "rejected", "Rejected"  # an operator said no (reason recorded)
    CANCELLED = "cancelled", "Cancelled"  # the requester withdrew it


class VMStatus(models.TextChoices):
    BUILDING = "building", "Building"  # create operation not finished yet
    ACTIVE = "active", "Active"  # exists and was last seen running
    STOPPED = "stopped", "Stopped"  # exists and was last seen stopped
    ERROR = "error", "Error"  # an operation failed and left it in doubt; see the last operation
    DELETED = "deleted", "Deleted"  # gone from the hypervisor (row kept for history and billing)


VM_LIVE_STATUSES = (VMStatus.BUILDING, VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.ERROR)


class PowerState(models.TextChoices):
    RUNNING = "running", "Running"  # hypervisor says on
    STOPPED = "stopped", "Stopped"  # hypervisor says off
    PAUSED = "paused", "Paused"  # hypervisor says paused/suspended
    UNKNOWN = "unknown", "Unknown"  # never reported, or the hypervisor could not say
    MISSING = "missing", "Missing"  # not found on the hypervisor by reconciliation


class Action(models.TextChoices):
    CREATE = "create", "Create"  # build the guest and start it
    START = "start", "Start"  # power on
    STOP = "stop", "Stop"  # graceful shutdown, then power off
    REBOOT = "reboot", "Reboot"  # restart a running guest
    DELETE = "delete", "Delete"  # power off and destroy with its disks
    PROVISION = "provision", "Provision tenant"  # per-project isolation on a hypervisor (OpenStack)
    SNAPSHOT_CREATE = "snapshot_create", "Snapshot"  # take a named snapshot (compute/services/day2.py)
    SNAPSHOT_REVERT = "snapshot_revert", "Revert to snapshot"  # roll the disk back to a snapshot
    SNAPSHOT_DELETE = "snapshot_delete", "Delete snapshot"  # remove one snapshot
    RESIZE = "resize", "Resize"  # change to another plan of the same guest type (vCPU, memory, disk grow)
    REBUILD = "rebuild", "Rebuild"  # replace the disk from an image; id, addresses and plan kept
    BACKUP_CREATE = "backup_create", "Backup"  # copy the disk off the guest (compute/services/backups.py)
    BACKUP_RESTORE = "backup_restore", "Restore from backup"  # replace the disk with a backup's copy
    BACKUP_DELETE = "backup_delete", "Delete backup"  # remove one backup from backup storage


class OperationState(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for a worker (new, or retry scheduled)
    RUNNING = "running", "Running"  # claimed by a worker; submitted and/or being polled
    SUCCEEDED = "succeeded", "Succeeded"  # finished; result written back
    FAILED = "failed", "Failed"  # gave up: permanent error or retries exhausted
    CANCELLED = "cancelled", "Cancelled"  # cancelled before it ran


ACTIVE_OPERATION_STATES = (OperationState.PENDING, OperationState.RUNNING)


class SnapshotState(models.TextChoices):
    CREATING = "creating", "Creating"  # its snapshot_create operation has not finished
    AVAILABLE = "available", "Available"  # exists on the hypervisor
    DELETING = "deleting", "Deleting"  # its snapshot_delete operation has not finished
    DELETED = "deleted", "Deleted"  # removed (row kept for history)
    ERROR = "error", "Error"  # the create failed; nothing to revert to
    MISSING = "missing", "Missing"  # reconciliation no longer finds it on the hypervisor


class BackupState(models.TextChoices):
    CREATING = "creating", "Creating"  # its backup_create operation has not finished
    AVAILABLE = "available", "Available"  # exists in the hypervisor's backup storage
    DELETING = "deleting", "Deleting"  # its backup_delete operation has not finished
    DELETED = "deleted", "Deleted"  # removed (row kept for history)
    ERROR = "error", "Error"  # the backup failed; nothing to restore from
    MISSING = "missing", "Missing"  # reconciliation no longer finds it in backup storage


class BackupKind(models.TextChoices):
    MANUAL = "manual", "Manual"  # "backup now" by a user; kept until deleted
    SCHEDULED = "scheduled", "Scheduled"  # taken by the VM's schedule; retention deletes the oldest


class BackupFrequency(models.TextChoices):
    DAILY = "daily", "Daily"  # every day in the window
    WEEKLY = "weekly", "Weekly"  # on one weekday in the window


BACKUP_LIVE_STATES = (BackupState.CREATING, BackupState.AVAILABLE, BackupState.DELETING, BackupState.MISSING)
BACKUP_ACTIONS = (Action.BACKUP_CREATE, Action.BACKUP_RESTORE, Action.BACKUP_DELETE)
SNAPSHOT_LIVE_STATES = (SnapshotState.CREATING, SnapshotState.AVAILABLE, SnapshotState.DELETING, SnapshotState.MISSING)
# Day-2 actions whose success leaves the VM's status as it was (what the hypervisor reports, if it says).
STATUS_KEEPING_ACTIONS = (
    Action.SNAPSHOT_CREATE,
    Action.SNAPSHOT_REVERT,
    Action.SNAPSHOT_DELETE,
    Action.RESIZE,
    Action.REBUILD,
    *BACKUP_ACTIONS,
)
FINAL_OPERATION_STATES = (OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED)

# Which VM statuses allow which action (checked by services; 409 otherwise).
ACTION_ALLOWED_FROM = {
    Action.START: (VMStatus.STOPPED,),
    Action.STOP: (VMStatus.ACTIVE,),
    Action.REBOOT: (VMStatus.ACTIVE,),
    Action.DELETE: (VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.ERROR),
    Action.SNAPSHOT_CREATE: (VMStatus.ACTIVE, VMStatus.STOPPED),
    Action.SNAPSHOT_REVERT: (VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.ERROR),
    Action.SNAPSHOT_DELETE: (VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.ERROR),
    Action.RESIZE: (VMStatus.ACTIVE, VMStatus.STOPPED),
    Action.REBUILD: (VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.ERROR),
    Action.BACKUP_CREATE: (VMStatus.ACTIVE, VMStatus.STOPPED),
    Action.BACKUP_RESTORE: (VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.ERROR),
    Action.BACKUP_DELETE: (VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.ERROR),
}

# The stable status an action leaves the VM in when it succeeds (STATUS_KEEPING_ACTIONS: the one it had).
ACTION_RESULT_STATUS = {
    Action.CREATE: VMStatus.ACTIVE,
    Action.START: VMStatus.ACTIVE,
    Action.STOP: VMStatus.STOPPED,
    Action.REBOOT: VMStatus.ACTIVE,
    Action.DELETE: VMStatus.DELETED,
}

# Default attempts per action (transient errors retry up to this many times).
DEFAULT_MAX_ATTEMPTS = {
    Action.CREATE: 5,
    Action.START: 5,
    Action.STOP: 5,
    Action.REBOOT: 5,
    Action.DELETE: 8,
    Action.PROVISION: 5,
    Action.SNAPSHOT_CREATE: 5,
    Action.SNAPSHOT_REVERT: 5,
    Action.SNAPSHOT_DELETE: 8,
    Action.RESIZE: 5,
    Action.REBUILD: 5,
    Action.BACKUP_CREATE: 5,
    Action.BACKUP_RESTORE: 5,
    Action.BACKUP_DELETE: 8,
}

# Seconds an operation may run (from its first claim) before the engine settles it from what
# the hypervisor shows (compute/retry.py). A create's is its hypervisor's build_timeout_seconds;
# an action missing here gets DEFAULT_DEADLINE_SECONDS; a hypervisor overrides any with
# connection["deadlines"] = {"<action>": seconds}.
DEADLINE_SECONDS = {
    Action.START: 600,
    Action.STOP: 600,
    Action.REBOOT: 600,
    Action.DELETE: 900,
    Action.PROVISION: 900,
    Action.BACKUP_CREATE: 3600,  # a whole disk is copied
    Action.BACKUP_RESTORE: 3600,
}
DEFAULT_DEADLINE_SECONDS = 1800

# -- the operation engine's constants (timings that deployments tune are settings.ENGINE) --

# Seconds before a claim refused for hypervisor maintenance looks again.
MAINTENANCE_RECHECK_SECONDS = 60
# Seconds before a claim refused for the hypervisor's concurrency limit looks again.
CAPACITY_RECHECK_SECONDS = 2
# Consecutive transient poll errors tolerated before the attempt is given back.
POLL_ERROR_LIMIT = 5
# Seconds to the first poll after a submit when the driver gives no hint.
DEFAULT_POLL_SECONDS = 2.0


class ConsoleProtocol(models.TextChoices):
    VNC = "vnc", "Screen (VNC)"  # the guest's graphical screen, shown with noVNC
    SERIAL = "serial", "Serial console"  # a text console (serial port, container terminal), shown with xterm.js


class AllocationState(models.TextChoices):
    ASSIGNED = "assigned", "Assigned"  # in use by a VM (or an operator's assignment to one)
    RESERVED = "reserved", "Reserved"  # held by an operator; never handed out
    COOLING = "cooling", "Cooling down"  # its VM is deleted; free again after cool_until


class AlertKind(models.TextChoices):
    CPU = "cpu", "CPU above a percentage for a while"  # threshold in %, over duration_minutes
    TRANSFER = "transfer", "Monthly transfer above a share of the plan's"  # threshold in % of included transfer


class AlertState(models.TextChoices):
    OK = "ok", "OK"  # below the threshold (or not enough data to say otherwise)
    FIRING = "firing", "Firing"  # above the threshold; an email went out

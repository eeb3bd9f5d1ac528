"""All writes of the compute domain. Import from here: ``from compute import services``.

operations.py is the engine's lifecycle (claim, progress, succeed, fail, relay, reaper),
writeback.py the one place a VM's confirmed state is written, operator.py an operator's
retry / cancel; the engine's retry rule is compute/retry.py.
"""

from .backups import (  # noqa: F401
    backup_retention_enforce,
    backup_schedule_delete,
    backup_schedule_set,
    backup_schedules_run,
    backup_window_start,
    vm_backup_create,
    vm_backup_delete,
    vm_backup_restore,
)
from .batches import vm_batch_approve, vm_batch_create, vm_batch_reject  # noqa: F401
from .console import (  # noqa: F401
    console_session_close,
    console_session_consume,
    console_session_open,
    console_session_refuse,
    console_session_start,
)
from .day2 import (  # noqa: F401
    resize_preview,
    vm_rebuild,
    vm_resize,
    vm_snapshot_create,
    vm_snapshot_delete,
    vm_snapshot_revert,
)
from .hypervisors import hypervisor_set_maintenance  # noqa: F401
from .operations import (  # noqa: F401
    Claim,
    operation_claim,
    operation_create,
    operation_create_many,
    operation_fail,
    operation_is_unlocked,
    operation_list_expired,
    operation_record_poll_error,
    operation_record_progress,
    operation_record_submitted,
    operation_relay_pending,
    operation_requeue_expired,
    operation_retry_later,
    operation_succeed,
)
from .operator import operation_cancel, operation_retry  # noqa: F401
from .quotas import quota_release, quota_reserve  # noqa: F401
from .reconcile import ReconcileReport, hypervisor_reconcile, hypervisor_record_check  # noqa: F401
from .requests import (  # noqa: F401
    vm_request_approve,
    vm_request_approve_as_staff,
    vm_request_cancel,
    vm_request_create,
    vm_request_reject,
)
from .snapshot_reconcile import backup_reconcile, snapshot_reconcile  # noqa: F401
from .tenants import tenant_gate, tenant_quotas, tenant_wake_waiting  # noqa: F401
from .vms import (  # noqa: F401
    vm_action,
    vm_action_by_id,
    vm_apply_observation,
    vm_lock_for_action,
    vm_resync_request,
    vm_take_for_action,
)
from .writeback import vm_record_status  # noqa: F401

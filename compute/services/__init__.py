"""All writes of the compute domain. Import from here: ``from compute import services``."""

from .console import (  # noqa: F401
    console_session_close,
    console_session_consume,
    console_session_open,
    console_session_refuse,
    console_session_start,
)
from .operations import (  # noqa: F401
    Claim,
    operation_cancel,
    operation_claim,
    operation_create,
    operation_fail,
    operation_is_overdue,
    operation_list_expired,
    operation_list_overdue,
    operation_record_poll_error,
    operation_record_progress,
    operation_record_submitted,
    operation_relay_pending,
    operation_requeue_expired,
    operation_retry,
    operation_retry_later,
    operation_succeed,
)
from .quotas import quota_release, quota_reserve  # noqa: F401
from .reconcile import ReconcileReport, hypervisor_reconcile, hypervisor_record_check  # noqa: F401
from .requests import (  # noqa: F401
    vm_request_approve,
    vm_request_approve_as_staff,
    vm_request_cancel,
    vm_request_create,
    vm_request_reject,
)
from .tenants import tenant_gate, tenant_quotas, tenant_wake_waiting  # noqa: F401
from .vms import vm_action, vm_apply_observation, vm_record_status, vm_resync_request  # noqa: F401

"""Every audit action and every named system actor, in one place.

``audit.record()`` refuses an action that is not listed here (``ValueError``),
so a typo fails the caller's tests instead of writing an event nobody filters
for. To add an action: add a member below with its one-line comment; no
migration is needed (the column stores the dotted name, not a foreign key).
"""

from django.db import models


class Action(models.TextChoices):
    # Virtual machines: the request side (.requested) and the engine's outcome
    VM_CREATE_REQUESTED = "vm.create.requested", "VM create requested"  # a create operation was queued
    VM_CREATE_SUCCEEDED = "vm.create.succeeded", "VM create succeeded"  # the hypervisor built the VM
    VM_CREATE_FAILED = "vm.create.failed", "VM create failed"  # the create gave up (reason in details)
    VM_START_REQUESTED = "vm.start.requested", "VM start requested"  # a start operation was queued
    VM_START_SUCCEEDED = "vm.start.succeeded", "VM start succeeded"  # the VM is running
    VM_START_FAILED = "vm.start.failed", "VM start failed"  # the start gave up
    VM_STOP_REQUESTED = "vm.stop.requested", "VM stop requested"  # a stop operation was queued
    VM_STOP_SUCCEEDED = "vm.stop.succeeded", "VM stop succeeded"  # the VM is stopped
    VM_STOP_FAILED = "vm.stop.failed", "VM stop failed"  # the stop gave up
    VM_REBOOT_REQUESTED = "vm.reboot.requested", "VM reboot requested"  # a reboot operation was queued
    VM_REBOOT_SUCCEEDED = "vm.reboot.succeeded", "VM reboot succeeded"  # the VM rebooted
    VM_REBOOT_FAILED = "vm.reboot.failed", "VM reboot failed"  # the reboot gave up
    VM_DELETE_REQUESTED = "vm.delete.requested", "VM delete requested"  # a delete operation was queued
    VM_DELETE_SUCCEEDED = "vm.delete.succeeded", "VM delete succeeded"  # the VM is gone from the hypervisor
    VM_DELETE_FAILED = "vm.delete.failed", "VM delete failed"  # the delete gave up
    CONSOLE_OPENED = "console.opened", "Console opened"  # the console proxy connected a browser (IP, protocol)
    CONSOLE_CLOSED = "console.closed", "Console closed"  # the console session ended (duration in details)
    # Networking (compute/services/rdns.py, compute/services/ipam.py)
    VM_PTR_SET = "vm.ptr_set", "VM reverse DNS name set"  # a user set or reset the PTR of an address
    VM_EXTRA_IP_ADDED = "vm.extra_ip_added", "Additional IP added"  # a priced additional address (plan add-on)
    VM_EXTRA_IP_REMOVED = "vm.extra_ip_removed", "Additional IP removed"  # the user gave an additional address back
    # VM monitoring (compute/services/alerts.py)
    ALERT_RULE_CREATED = "alert.rule_created", "Alert rule created"  # a user set a threshold on a VM
    ALERT_RULE_DELETED = "alert.rule_deleted", "Alert rule deleted"  # a user removed a threshold
    ALERT_FIRED = "alert.fired", "Alert fired"  # a VM crossed a threshold (value in details)
    ALERT_RECOVERED = "alert.recovered", "Alert recovered"  # the VM is back below the threshold
    VM_SNAPSHOT_CREATE_REQUESTED = "vm.snapshot_create.requested", "VM snapshot requested"  # a snapshot was queued
    VM_SNAPSHOT_CREATE_SUCCEEDED = (
        "vm.snapshot_create.succeeded",
        "VM snapshot succeeded",
    )  # the hypervisor finished a snapshot
    VM_SNAPSHOT_CREATE_FAILED = (
        "vm.snapshot_create.failed",
        "VM snapshot failed",
    )  # a snapshot gave up (reason in details)
    VM_SNAPSHOT_REVERT_REQUESTED = (
        "vm.snapshot_revert.requested",
        "VM snapshot revert requested",
    )  # a revert to a snapshot was queued
    VM_SNAPSHOT_REVERT_SUCCEEDED = (
        "vm.snapshot_revert.succeeded",
        "VM snapshot revert succeeded",
    )  # the hypervisor finished a revert to a snapshot
    VM_SNAPSHOT_REVERT_FAILED = (
        "vm.snapshot_revert.failed",
        "VM snapshot revert failed",
    )  # a revert to a snapshot gave up (reason in details)
    VM_SNAPSHOT_DELETE_REQUESTED = (
        "vm.snapshot_delete.requested",
        "VM snapshot delete requested",
    )  # a snapshot's deletion was queued
    VM_SNAPSHOT_DELETE_SUCCEEDED = (
        "vm.snapshot_delete.succeeded",
        "VM snapshot delete succeeded",
    )  # the hypervisor finished a snapshot's deletion
    VM_SNAPSHOT_DELETE_FAILED = (
        "vm.snapshot_delete.failed",
        "VM snapshot delete failed",
    )  # a snapshot's deletion gave up (reason in details)
    VM_RESIZE_REQUESTED = "vm.resize.requested", "VM resize requested"  # a resize to another plan was queued
    VM_RESIZE_SUCCEEDED = (
        "vm.resize.succeeded",
        "VM resize succeeded",
    )  # the hypervisor finished a resize to another plan
    VM_RESIZE_FAILED = "vm.resize.failed", "VM resize failed"  # a resize to another plan gave up (reason in details)
    VM_REBUILD_REQUESTED = "vm.rebuild.requested", "VM rebuild requested"  # a rebuild from an image was queued
    VM_REBUILD_SUCCEEDED = (
        "vm.rebuild.succeeded",
        "VM rebuild succeeded",
    )  # the hypervisor finished a rebuild from an image
    VM_REBUILD_FAILED = "vm.rebuild.failed", "VM rebuild failed"  # a rebuild from an image gave up (reason in details)
    # Backups (compute/services/backups.py): each operation's request and outcome, schedules
    VM_BACKUP_CREATE_REQUESTED = "vm.backup_create.requested", "VM backup requested"  # a backup was queued
    VM_BACKUP_CREATE_SUCCEEDED = "vm.backup_create.succeeded", "VM backup succeeded"  # the disk copy is kept
    VM_BACKUP_CREATE_FAILED = "vm.backup_create.failed", "VM backup failed"  # a backup gave up (reason in details)
    VM_BACKUP_CREATE_SKIPPED = (
        "vm.backup_create.skipped",
        "Scheduled backup skipped",
    )  # the schedule's window found the VM busy (reason in details); once per window
    VM_BACKUP_RESTORE_REQUESTED = "vm.backup_restore.requested", "VM restore requested"  # a restore was queued
    VM_BACKUP_RESTORE_SUCCEEDED = (
        "vm.backup_restore.succeeded",
        "VM restore succeeded",
    )  # the disk was replaced by a backup
    VM_BACKUP_RESTORE_FAILED = "vm.backup_restore.failed", "VM restore failed"  # a restore gave up
    VM_BACKUP_DELETE_REQUESTED = "vm.backup_delete.requested", "VM backup delete requested"  # a deletion was queued
    VM_BACKUP_DELETE_SUCCEEDED = (
        "vm.backup_delete.succeeded",
        "VM backup delete succeeded",
    )  # the backup is gone from backup storage
    VM_BACKUP_DELETE_FAILED = "vm.backup_delete.failed", "VM backup delete failed"  # a backup's deletion gave up
    VM_BACKUP_SCHEDULE_SET = "vm.backup_schedule.set", "Backup schedule set"  # frequency, window, retention in details
    VM_BACKUP_SCHEDULE_DELETED = "vm.backup_schedule.deleted", "Backup schedule removed"  # no more scheduled backups
    # Operations (the engine's unit of work)
    OPERATION_STATE_CHANGED = "operation.state_changed", "Operation state changed"  # from/to state, task ref
    OPERATION_RETRIED = "operation.retried", "Operation retried"  # a transient error, attempt number in details
    OPERATION_CANCELLED = "operation.cancelled", "Operation cancelled"  # withdrawn before it ran
    # VM requests (approval workflow)
    REQUEST_CREATED = "request.created", "Request created"  # a user asked for a VM
    REQUEST_APPROVED = "request.approved", "Request approved"  # an operator (or trust) approved it
    REQUEST_REJECTED = "request.rejected", "Request rejected"  # an operator refused it (reason in details)
    REQUEST_CANCELLED = "request.cancelled", "Request cancelled"  # the requester withdrew it
    BATCH_CREATED = "batch.created", "Batch created"  # a user asked for N VMs at once (one request each)
    # Authentication
    AUTH_LOGIN_SUCCEEDED = "auth.login.succeeded", "Login succeeded"  # a session was opened
    AUTH_LOGIN_FAILED = "auth.login.failed", "Login failed"  # wrong password, 2FA code or locked out
    AUTH_LOGOUT = "auth.logout", "Logout"  # a session was closed by the user
    AUTH_2FA_ENABLED = "auth.2fa.enabled", "2FA enabled"  # a second factor was confirmed
    AUTH_2FA_DISABLED = "auth.2fa.disabled", "2FA disabled"  # a second factor was removed
    AUTH_TOKEN_CREATED = "auth.token.created", "API token created"  # token name and prefix in details, never the secret
    AUTH_TOKEN_REVOKED = "auth.token.revoked", "API token revoked"  # a token stopped working
    AUTH_SESSION_REVOKED = "auth.session.revoked", "Session revoked"  # the user ended another browser session
    # Project membership
    MEMBER_INVITED = "member.invited", "Member invited"  # an invitation was sent
    MEMBER_ADDED = "member.added", "Member added"  # someone joined a project
    MEMBER_REMOVED = "member.removed", "Member removed"  # someone left or was removed
    MEMBER_ROLE_CHANGED = "member.role_changed", "Member role changed"  # from/to role in details
    MEMBER_INVITATION_REVOKED = "member.invitation_revoked", "Invitation withdrawn"  # an open invitation was cancelled
    # SSH key library
    SSH_KEY_ADDED = "ssh_key.added", "SSH key added"  # a public key was saved (fingerprint in details)
    SSH_KEY_REMOVED = "ssh_key.removed", "SSH key removed"  # a saved key was deleted (VMs keep their copy)
    # Outbound webhooks (notifications app)
    WEBHOOK_CREATED = "webhook.created", "Webhook created"  # an endpoint was added (URL and event types)
    WEBHOOK_UPDATED = "webhook.updated", "Webhook updated"  # URL, event types, enabled or secret changed
    WEBHOOK_DELETED = "webhook.deleted", "Webhook deleted"  # an endpoint was removed
    WEBHOOK_DISABLED = "webhook.disabled", "Webhook disabled"  # turned off after repeated delivery failures
    # Users
    USER_CREATED = "user.created", "User created"  # a person got an account
    USER_DEACTIVATED = "user.deactivated", "User deactivated"  # the account can no longer log in
    USER_REACTIVATED = "user.reactivated", "User reactivated"  # the account can log in again
    USER_PRIVILEGES_CHANGED = "user.privileges_changed", "Privileges changed"  # staff/superuser/groups (from/to)
    USER_PROFILE_UPDATED = "user.profile_updated", "Profile updated"  # name or display time zone (from/to)
    # Projects
    PROJECT_CREATED = "project.created", "Project created"  # a tenant was created
    PROJECT_UPDATED = "project.updated", "Project updated"  # renamed or 2FA requirement changed (from/to in details)
    PROJECT_DELETED = "project.deleted", "Project deleted"  # a team project without VMs was removed by an owner
    PROJECT_SUSPENDED = "project.suspended", "Project suspended"  # VMs stopped / actions blocked (reason in details)
    PROJECT_UNSUSPENDED = "project.unsuspended", "Project unsuspended"  # the suspension was lifted
    # Money
    WALLET_TOPUP = "wallet.topup", "Wallet top-up"  # money came in (payment reference in details)
    WALLET_ADJUSTED = "wallet.adjusted", "Wallet adjusted"  # an operator corrected the balance
    WALLET_DEBITED = "wallet.debited", "Wallet debited"  # metered usage was charged
    INVOICE_ISSUED = "invoice.issued", "Invoice issued"  # a GST invoice got its number
    INVOICE_NOT_ISSUED = "invoice.not_issued", "Invoice not issued"  # the monthly run failed for a project (why)
    CREDIT_NOTE_ISSUED = "credit_note.issued", "Credit note issued"  # a GST credit note got its number
    BILLING_SETTINGS_UPDATED = "billing.settings_updated", "Billing settings updated"  # supplier/policy (diff)
    BILLING_PROFILE_UPDATED = "billing.profile_updated", "Billing profile updated"  # a project's invoice address/GSTIN
    EINVOICE_REGISTERED = "einvoice.registered", "E-invoice registered"  # the IRP's IRN and signed QR code imported
    EINVOICE_REJECTED = "einvoice.rejected", "E-invoice rejected"  # the IRP's error list imported for an invoice
    TDS_RECORDED = "tds.recorded", "TDS recorded"  # income-tax TDS a customer deducted, credited to its wallet
    TDS_CERTIFICATE_RECORDED = "tds.certificate_recorded", "TDS certificate recorded"  # Form 16A of a deduction
    BILLING_REGISTRATION_SAVED = "billing.registration_saved", "Supplier registration saved"  # a further GSTIN
    # Payments in and refunds out (billing/payments/)
    PAYMENT_RECEIVED = "payment.received", "Payment received"  # gateway or bank payment credited, once; receipt
    PAYMENT_IGNORED = "payment.ignored", "Payment message ignored"  # webhook/callback crediting nothing (why)
    PAYMENT_TRANSFER_REPORTED = "payment.transfer_reported", "Transfer reported"  # a customer gave a UTR
    PAYMENT_TRANSFER_REJECTED = "payment.transfer_rejected", "Transfer rejected"  # operator found no such money
    REFUND_ISSUED = "refund.issued", "Refund issued"  # balance paid back; refund voucher issued
    REFUND_PROCESSED = "refund.processed", "Refund processed"  # the gateway confirmed the payout
    TRIAL_GRANTED = "trial.granted", "Trial credit granted"  # sign-up credit for a verified email
    TRIAL_EXPIRED = "trial.expired", "Trial credit expired"  # unused trial credit taken back
    PAYMENT_SETTINGS_UPDATED = "billing.payment_settings_updated", "Payment settings updated"  # no secrets in details
    # Infrastructure and operators
    HYPERVISOR_CHANGED = "hypervisor.changed", "Hypervisor changed"  # registry entry added, edited or disabled
    HYPERVISOR_MAINTENANCE_ENTERED = "hypervisor.maintenance.entered", "Maintenance entered"  # its operations wait
    HYPERVISOR_MAINTENANCE_LEFT = "hypervisor.maintenance.left", "Maintenance left"  # its operations run again
    DRIFT_DETECTED = "drift.detected", "Drift detected"  # reconciler found the hypervisor disagreeing
    ADMIN_ACTION = "admin.action", "Admin action"  # something done through Django admin
    AUDIT_RETENTION = "audit.retention", "Audit retention"  # old events archived and removed (checkpoint)
    # Security monitoring (audit/detection.py)
    SECURITY_ALERT = "security.alert", "Security alert"  # a suspicious pattern (rule, key, counts in details)


ACTION_NAMES = frozenset(Action.values)


class SystemActor(models.TextChoices):
    """Kinds of actor that are not a person's account.

    An actor string is a kind, optionally qualified after a colon:
    ``worker:<hostname>``, ``system:auto-approve``, ``operator:cli``.
    """

    SYSTEM = "system", "System"  # management commands, automatic decisions, anything without a person
    WORKER = "worker", "Worker"  # a Celery worker process: worker:<hostname>
    SCHEDULER = "scheduler", "Scheduler"  # periodic tasks started by Celery beat
    RECONCILER = "reconciler", "Reconciler"  # drift sync between hypervisors and the database
    REAPER = "reaper", "Reaper"  # recovery of operations whose worker died
    OPERATOR = "operator", "Operator"  # an operator's tool without a user account (operator:cli)
    ANONYMOUS = "anonymous", "Anonymous"  # an unauthenticated web request (e.g. a failed login)


WORKER_PREFIX = "worker:"


def actor_kind(actor: str) -> str | None:
    """The SystemActor kind of an actor string, or None when it is not one."""
    kind = actor.split(":", 1)[0]
    return kind if kind in SystemActor.values else None

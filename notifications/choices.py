"""Event types users and operators subscribe to, and the delivery states."""

from django.db import models


class EventType(models.TextChoices):
    VM_READY = "vm.ready", "VM ready"  # a create finished: the VM runs
    VM_DELETED = "vm.deleted", "VM deleted"  # a delete finished: the VM is gone from the hypervisor
    OPERATION_FAILED = "operation.failed", "Operation failed"  # a create/start/stop/reboot/delete gave up
    APPROVAL_NEEDED = "approval.needed", "Approval needed"  # a VM request waits for an operator
    APPROVAL_DECIDED = "approval.decided", "Approval decided"  # an operator approved or rejected a request
    BALANCE_LOW = "balance.low", "Low balance"  # the wallet fell below a threshold (no audit action yet)
    PROJECT_SUSPENDED = "project.suspended", "Project suspended"  # VMs stopped, actions blocked
    PROJECT_UNSUSPENDED = "project.unsuspended", "Suspension lifted"  # the project works again
    PAYMENT_RECEIVED = "payment.received", "Payment received"  # a wallet top-up was credited
    INVOICE_ISSUED = "invoice.issued", "Invoice issued"  # a GST invoice got its number
    BACKUP_FAILED = "backup.failed", "Backup failed"  # a backup (now or scheduled) gave up
    ALERT_FIRED = "alert.fired", "Alert fired"  # a monitoring alert fired (no audit action yet)
    WEBHOOK_DISABLED = "webhook.disabled", "Webhook disabled"  # an endpoint was turned off after failures


# Email is on by default for every type except these (a user changes it under Notifications → Preferences).
EMAIL_OFF_BY_DEFAULT = frozenset({EventType.VM_DELETED})


class Audience(models.TextChoices):
    """Who gets the in-portal notification (and email) of an event."""

    VM_OWNER = "vm_owner", "VM owner and project admins"  # the VM's owner plus the project's owners/admins
    REQUESTER = "requester", "Requester"  # the person who asked for the VM
    PROJECT_ADMINS = "project_admins", "Project owners and admins"  # billing and suspension news
    OPERATORS = "operators", "Operators"  # active staff accounts
    WEBHOOK_OWNER = "webhook_owner", "Webhook owner"  # who created the endpoint


class EmailState(models.TextChoices):
    PENDING = "pending", "Pending"  # to be sent by send_notification_email
    SENT = "sent", "Sent"  # the mail server accepted it
    SKIPPED = "skipped", "Skipped"  # the user turned email off for this type
    FAILED = "failed", "Failed"  # gave up after retries (error kept)


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its next attempt (next_attempt_at)
    SUCCEEDED = "succeeded", "Succeeded"  # the endpoint answered 2xx
    FAILED = "failed", "Failed"  # out of attempts, or the endpoint was disabled


FINAL_DELIVERY_STATES = frozenset({DeliveryState.SUCCEEDED, DeliveryState.FAILED})

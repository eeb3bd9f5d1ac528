"""Billing's Celery tasks (beat schedule: settings.EXTRA_BEAT_SCHEDULE). Thin:
each calls one service; the services are safe to run twice or concurrently.
A run stops within its time budget; the charge job then sends itself again,
the invoice run continues at its next scheduled run."""

import time

from celery import shared_task
from django.conf import settings

from . import services
from .payments import trial


def _budget() -> float:
    return settings.CELERY_TASK_SOFT_TIME_LIMIT * 0.75


@shared_task(name="charge_usage")
def charge_usage():
    """Meter complete hours, debit the wallets, suspend the overdue."""
    result = services.billing_run_hourly(budget_seconds=_budget())
    if result["more"]:
        charge_usage.apply_async()
    return result


@shared_task(name="issue_monthly_invoices")
def issue_monthly_invoices():
    """Invoice last month's usage of every project metered past its end."""
    invoices = services.invoice_issue_monthly(deadline=time.monotonic() + _budget())
    return {"invoices": [invoice.number for invoice in invoices]}


@shared_task(name="charge_transfer")
def charge_transfer():
    """Meter closed months' transfer over the plans' allowances and debit it."""
    return {"charges": services.transfer_charge_pending()}


@shared_task(name="charge_snapshot_storage")
def charge_snapshot_storage():
    """Meter closed months' snapshot storage (GiB-hours) and debit it, when it has a price."""
    return {"charges": services.snapshot_storage_charge_pending()}


@shared_task(name="charge_backup_storage")
def charge_backup_storage():
    """Meter closed months' backup storage (GiB-hours) and debit it, when it has a price."""
    return {"charges": services.backup_storage_charge_pending()}


@shared_task(name="expire_trial_credit")
def expire_trial_credit():
    """Take back unused trial credit past its validity (a ledger entry each)."""
    return {"expired": trial.trial_expire_due()}

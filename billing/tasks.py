"""Billing's Celery tasks (beat schedule: settings.EXTRA_BEAT_SCHEDULE). Thin:
each calls one service; the services are safe to run twice or concurrently."""

from celery import shared_task

from . import services


@shared_task(name="charge_usage")
def charge_usage():
    """Meter complete hours, debit the wallets, suspend the overdue."""
    return services.billing_run_hourly()


@shared_task(name="issue_monthly_invoices")
def issue_monthly_invoices():
    """Invoice last month's usage of every project metered past its end."""
    return {"invoices": [invoice.number for invoice in services.invoice_issue_monthly()]}

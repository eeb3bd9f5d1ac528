"""Emails about a project's money. Sent after commit; a mail failure is
logged, never raised into billing."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.core.mail import send_mail

from accounts.models import Project

from ..money import format_inr
from ..selectors import billing_recipients, billing_settings_get

logger = logging.getLogger(__name__)


def wallet_notify_low_balance(*, project_id: int, balance: Decimal, threshold: Decimal) -> int:
    """Email the project's owners and admins (and its billing email) that the
    balance fell below ``threshold`` (below zero: the grace period starts)."""
    project = Project.objects.get(pk=project_id)
    if threshold <= 0:
        grace = billing_settings_get().grace_hours
        subject = f"[{project.name}] Wallet balance below zero"
        body = (
            f"The wallet of project {project.name} is at ₹{format_inr(balance)}. Top up within {grace} hours: "
            "after that the project is suspended and its virtual machines are stopped."
        )
    else:
        subject = f"[{project.name}] Wallet balance below ₹{format_inr(threshold)}"
        body = (
            f"The wallet of project {project.name} is at ₹{format_inr(balance)}. Top up to keep your machines running."
        )
    try:
        return send_mail(subject, body, None, billing_recipients(project=project))
    except Exception:  # noqa: BLE001 - a mail server problem must not undo billing
        logger.exception("low-balance email for project %s failed", project_id)
        return 0

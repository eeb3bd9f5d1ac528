"""Emails about a project's money. Sent after commit; a mail failure is
logged, never raised into billing."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.contrib.auth import get_user_model
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


def operator_alert(*, subject: str, body: str) -> int:
    """Email every active staff user (the operators) about something billing
    could not do on its own. A mail failure is logged, never raised."""
    recipients = list(
        get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True)
    )
    if not recipients:
        logger.error("no staff user to alert: %s", subject)
        return 0
    try:
        return send_mail(f"[billing] {subject}", body, None, recipients)
    except Exception:  # noqa: BLE001 - a mail server problem must not undo billing
        logger.exception("operator alert %r failed", subject)
        return 0

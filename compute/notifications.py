"""Emails to users about their requests. Sent after commit; a mail failure never
undoes the decision."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

logger = logging.getLogger(__name__)


def _send(subject: str, body: str, to: str) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
    except Exception:
        logger.warning("could not send mail to %s", to, exc_info=True)


def notify_request_decided(request) -> None:
    if request.status == "approved":
        subject = f"Your VM {request.name} is approved"
        body = (
            f"Your request for {request.name} ({request.plan}) was approved; it is being built now.\n\n"
            f"{settings.SITE_URL}/"
        )
    else:
        subject = f"Your VM request {request.name} was rejected"
        body = f"Your request for {request.name} ({request.plan}) was rejected.\nReason: {request.reason or '-'}\n"
    to = request.requester.email
    transaction.on_commit(lambda: _send(subject, body, to))

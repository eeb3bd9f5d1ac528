"""Mail the accounts app sends itself (allauth sends sign-up and password mail)."""

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from .models import Invitation


def invitation_send(*, invitation: Invitation, token: str) -> None:
    context = {
        "invitation": invitation,
        "project": invitation.project,
        "inviter": invitation.invited_by,
        "accept_url": settings.SITE_URL.rstrip("/") + reverse("accounts:invitation_accept", args=[token]),
    }
    subject = render_to_string("accounts/email/invitation_subject.txt", context).strip()
    body = render_to_string("accounts/email/invitation_message.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])

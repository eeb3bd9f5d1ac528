"""Thin receivers: Django's login signals fire from every login path (allauth,
the admin's login form, a login refused by the lockout), so they are where a
login is noticed. Each one only calls a service."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django_otp.forms import otp_verification_failed

from . import services
from .security import login_identifier


@receiver(user_logged_in, dispatch_uid="accounts.login")
def _logged_in(sender, request, user, **kwargs):
    services.login_record(user=user, request=request)
    if request is not None and hasattr(request, "session"):
        services.session_touch(user=user, request=request)


@receiver(user_login_failed, dispatch_uid="accounts.login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    services.login_failure_record(
        identifier=login_identifier(request, credentials),
        reason="locked_out" if getattr(request, "login_locked_out", False) else "credentials",
        request=request,
    )


@receiver(otp_verification_failed, dispatch_uid="accounts.otp_failed")
def _otp_failed(sender, user, **kwargs):
    """A wrong code in the admin's login form (the portal's code page records its own).
    The signal carries no request: audit.record takes it from the request in progress."""
    services.login_failure_record(identifier=user.get_username(), reason="otp")


@receiver(user_logged_out, dispatch_uid="accounts.logout")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        services.logout_record(user=user, request=request)

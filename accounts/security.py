"""Request-level security helpers shared by every app.

- ``require_recent_otp``: decorator for portal views of destructive actions
  (delete a VM, create an API token, remove 2FA). A user with 2FA must have
  entered a code within ``OTP_RECENT_SECONDS``, or send one with the form as
  ``otp_token`` (``{% load accounts_security %}{% otp_field %}`` in the form).
- ``check_recent_otp``: the same rule for DRF views (code in the
  ``X-OTP-Token`` header); ``accounts.permissions.RecentOTP`` wraps it.
- ``otp_verify``: check a TOTP or backup code against the user's devices.
- Callables for django-axes (client address, login identifier).
"""

import time
from functools import wraps
from urllib.parse import urlencode

from allauth.account.adapter import get_adapter
from allauth.core import ratelimit
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login

from controlplane.errors import Forbidden

from .models import BackupCodeDevice, TOTPDevice
from .selectors import user_has_2fa

OTP_VERIFIED_AT_SESSION_KEY = "otp_verified_at"
OTP_HEADER = "HTTP_X_OTP_TOKEN"


def client_ip(request) -> str | None:
    """The client address as allauth sees it (honours ``TRUSTED_PROXY_COUNT``); None when unknown."""
    try:
        return get_adapter().get_client_ip(request)
    except PermissionDenied:  # no address at all: a request built in code, not a client
        return None


def login_identifier(request, credentials) -> str:
    """What was typed as the login, lower-cased: allauth sends ``email``, the admin form ``username``."""
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if not value and request is not None:
        value = request.POST.get("login") or request.POST.get("username")
    return (value or "").strip().lower()


def token_creation_allowed(request) -> bool:
    """The ``create_token`` rate limit (ACCOUNT_RATE_LIMITS, per user, in the shared cache)."""
    return ratelimit.consume(request, action="create_token", user=request.user)


def otp_verify(*, user, token: str):
    """The device that accepts ``token`` (a 6-digit TOTP code or a backup
    code, which is then used up), or None. Failures count towards
    django-otp's per-device throttling, so guessing slows down exponentially."""
    token = (token or "").replace(" ", "").strip().lower()
    if not token or not user.is_authenticated:
        return None
    model = TOTPDevice if token.isdigit() and len(token) == 6 else BackupCodeDevice
    with transaction.atomic():
        for device in model.objects.devices_for_user(user, confirmed=True).select_for_update():
            if device.verify_token(token):
                return device
    return None


def otp_mark_verified(request, device) -> None:
    """Record in the session that this device just verified the user."""
    otp_login(request, device)
    request.session[OTP_VERIFIED_AT_SESSION_KEY] = time.time()


def otp_is_recent(request) -> bool:
    verified_at = request.session.get(OTP_VERIFIED_AT_SESSION_KEY, 0)
    return request.session.get(DEVICE_ID_SESSION_KEY) is not None and (
        time.time() - verified_at <= settings.OTP_RECENT_SECONDS
    )


def otp_fresh_enough(request, token: str | None) -> bool:
    """Portal rule: the user has no 2FA, entered a code recently in this
    session, or ``token`` is a valid code now (the session is then refreshed)."""
    if not user_has_2fa(user=request.user):
        return True
    if token:
        device = otp_verify(user=request.user, token=token)
        if device is not None:
            otp_mark_verified(request, device)
            request.otp_code_verified = True  # a code checked in this very request (staff tokens need one)
        return device is not None
    return otp_is_recent(request)


def safe_next(request, url: str | None, default: str = "/") -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return default


def otp_confirm_url(next_url: str) -> str:
    return f"{reverse('accounts:two_factor_verify')}?{urlencode({'next': next_url})}"


def require_recent_otp(view_func):
    """Portal views: ask a user with 2FA for a fresh code before the view runs.

    A POST may carry the code as ``otp_token``. Otherwise the user is sent to
    the code page and comes back: to the same URL for a GET, to the page the
    form was on for a POST (they submit again; nothing was done yet).
    """

    @wraps(view_func)
    def wrapper(request, *args, **kwargs):
        token = request.POST.get("otp_token") if request.method == "POST" else None
        if otp_fresh_enough(request, token):
            return view_func(request, *args, **kwargs)
        if token:
            messages.error(request, "That two-factor code is not right; nothing was done.")
        if request.method == "GET":
            back = request.get_full_path()
        else:
            back = safe_next(request, request.META.get("HTTP_REFERER"), default="/")
        return redirect(otp_confirm_url(back))

    return wrapper


def recent_otp_ok(request) -> bool:
    """``check_recent_otp`` as a yes/no."""
    try:
        check_recent_otp(request)
    except Forbidden:
        return False
    return True


def check_recent_otp(request) -> None:
    """API rule: raise Forbidden (code ``otp_required``) unless the caller has
    no 2FA, sends a valid code in ``X-OTP-Token``, or is authenticated by a
    session in which a code was entered recently. An API token alone is never
    enough: a leaked token must not be able to do the destructive things."""
    user = request.user
    if not user_has_2fa(user=user):
        return
    token = request.META.get(OTP_HEADER, "")
    if token and otp_verify(user=user, token=token) is not None:
        request.otp_code_verified = True  # a code checked in this very request (staff tokens need one)
        return
    if not token and request.auth is None and otp_is_recent(request):
        return
    raise Forbidden(
        "This action needs a current two-factor code: send it in the X-OTP-Token header.", code="otp_required"
    )

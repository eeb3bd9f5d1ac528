import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from controlplane.api import error_body

from .security import otp_confirm_url
from .selectors import two_factor_state
from .services.sessions import SESSION_TOUCHED_AT, session_touch

# Pages a half-logged-in user may still reach (besides views marked two_factor_exempt).
EXEMPT_URL_NAMES = {"account_logout", "healthz", "readyz"}


def two_factor_exempt(view_func):
    """Mark a view as reachable before the second factor (the 2FA pages themselves)."""
    view_func.two_factor_exempt = True
    return view_func


class TwoFactorMiddleware:
    """Enforces 2FA for session users, on every portal page and session API call.

    - A user with a device whose session has not entered a code yet (password
      only) goes to the code page; the API answers 403 ``otp_required``.
    - A member of a project that requires 2FA, without a device, goes to
      enrolment; the API answers 403 ``two_factor_required``.

    Django admin is left to its own OTP login form (accounts.admin_site);
    API token requests are checked by accounts.authentication.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or getattr(view_func, "two_factor_exempt", False):
            return None
        match = request.resolver_match
        if match is not None and (match.url_name in EXEMPT_URL_NAMES or match.app_name == "admin"):
            return None
        state = two_factor_state(user=user)
        api = request.path_info.startswith("/api/")
        if state.has_device and not user.is_verified():
            if api:
                message = "Enter your two-factor code in the portal first (this session is not verified)."
                return JsonResponse(error_body("otp_required", message), status=403)
            return redirect(otp_confirm_url(request.get_full_path()))
        if state.enrolment_required:
            message = f"Project {state.required_by} requires two-factor authentication: set it up to continue."
            if api:
                return JsonResponse(error_body("two_factor_required", message), status=403)
            messages.warning(request, message)
            return redirect(reverse("accounts:two_factor"))
        return None


class SessionActivityMiddleware:
    """Notes which session a user is using, and when, for the security page's
    session list: one write per session every ``SESSION_TOUCH_SECONDS``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and request.session.session_key:
            if time.time() - request.session.get(SESSION_TOUCHED_AT, 0) > settings.SESSION_TOUCH_SECONDS:
                session_touch(user=user, request=request)
        return self.get_response(request)


class TimeZoneMiddleware:
    """Pages render times in the user's own zone (Profile page), else in TIME_ZONE
    (DISPLAY_TIME_ZONE, Asia/Kolkata by default); templates print the zone's abbreviation
    beside every time. Storage stays UTC. The API is untouched: it answers ISO 8601 in UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = getattr(request.user, "time_zone", "") if request.user.is_authenticated else ""
        try:
            timezone.activate(ZoneInfo(name)) if name else timezone.deactivate()
        except (ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()  # a zone removed from the tz database since it was chosen
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

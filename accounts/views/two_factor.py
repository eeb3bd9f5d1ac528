"""Security pages: 2FA status, enrolment (QR code + secret + first code),
backup codes (shown once), the code page, and removal."""

from base64 import b32encode

import segno
from allauth.account.adapter import get_adapter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_otp.util import random_hex

from .. import selectors, services
from ..forms import OTPCodeForm, TwoFactorDisableForm
from ..middleware import two_factor_exempt
from ..models import BackupCode, TOTPDevice
from ..security import otp_mark_verified, otp_verify, require_recent_otp, safe_next
from .common import portal_errors

SETUP_KEY_SESSION_KEY = "otp_setup_key"
CODES_ONCE_SESSION_KEY = "otp_backup_codes_once"


@two_factor_exempt
@login_required
def two_factor(request):
    user = request.user
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    backup_left = BackupCode.objects.filter(device__user=user).count() if device else 0
    return render(request, "accounts/two_factor.html", {"device": device, "backup_left": backup_left})


@two_factor_exempt
@login_required
@portal_errors
def two_factor_setup(request):
    """The key lives in the session until the first code proves the app has it."""
    if selectors.user_has_2fa(user=request.user):
        messages.info(request, "Two-factor authentication is already on.")
        return redirect("accounts:two_factor")
    key = request.session.get(SETUP_KEY_SESSION_KEY) or random_hex(20)
    request.session[SETUP_KEY_SESSION_KEY] = key
    form = OTPCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device, codes = services.totp_device_confirm(
            user=request.user, key=key, token=form.cleaned_data["otp_token"], request=request
        )
        del request.session[SETUP_KEY_SESSION_KEY]
        otp_mark_verified(request, device)
        request.session[CODES_ONCE_SESSION_KEY] = codes
        messages.success(request, "Two-factor authentication is on.")
        return redirect("accounts:two_factor_backup_codes")
    config_url = TOTPDevice(user=request.user, key=key).config_url
    context = {
        "form": form,
        "secret": b32encode(bytes.fromhex(key)).decode(),
        "qr_svg": segno.make(config_url, error="m").svg_inline(scale=5, dark="#000", light="#fff"),
        "config_url": config_url,
    }
    return render(request, "accounts/two_factor_setup.html", context)


@login_required
def two_factor_backup_codes(request):
    """Shows freshly made backup codes exactly once (they are popped from the session)."""
    codes = request.session.pop(CODES_ONCE_SESSION_KEY, None)
    if not codes:
        return redirect("accounts:two_factor")
    return render(request, "accounts/backup_codes.html", {"codes": codes})


@require_POST
@login_required
@require_recent_otp
@portal_errors
def two_factor_backup_codes_regenerate(request):
    request.session[CODES_ONCE_SESSION_KEY] = services.backup_codes_regenerate(user=request.user, request=request)
    return redirect("accounts:two_factor_backup_codes")


@two_factor_exempt
@login_required
def two_factor_verify(request):
    """The code page: after the password at login, and before destructive actions."""
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"), default="/")
    if not selectors.user_has_2fa(user=request.user):
        return redirect(next_url)
    form = OTPCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = otp_verify(user=request.user, token=form.cleaned_data["otp_token"])
        if device is not None:
            reconfirm = request.user.is_verified()
            otp_mark_verified(request, device)
            if not reconfirm:
                messages.success(request, f"Signed in as {request.user.email}.")
            return redirect(next_url)
        services.login_failure_record(identifier=request.user.email, reason="otp", request=request)
        form.add_error("otp_token", "That code is not right (or you tried too often: wait a moment).")
    context = {"form": form, "next": next_url, "reconfirm": request.user.is_verified()}
    return render(request, "accounts/two_factor_verify.html", context)


@login_required
@portal_errors
def two_factor_disable(request):
    """Removal asks for the password and a current code again."""
    if not selectors.user_has_2fa(user=request.user):
        return redirect("accounts:two_factor")
    form = TwoFactorDisableForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = request.user
        if not get_adapter(request).reauthenticate(user, form.cleaned_data["password"]):
            form.add_error("password", "Wrong password.")
        elif otp_verify(user=user, token=form.cleaned_data["otp_token"]) is None:
            form.add_error("otp_token", "That code is not right.")
        else:
            services.two_factor_disable(user=user, request=request)
            messages.success(request, "Two-factor authentication is off.")
            return redirect("accounts:two_factor")
    return render(request, "accounts/two_factor_disable.html", {"form": form})

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..forms import TokenCreateForm
from ..security import require_recent_otp, token_creation_allowed
from .common import form_errors, portal_errors

TOKEN_ONCE_SESSION_KEY = "access_token_once"


@login_required
def token_list(request):
    """Lists the user's tokens; a token just created is shown here once."""
    context = {
        "tokens": selectors.access_token_list_for_user(user=request.user),
        "form": TokenCreateForm(staff_user=request.user.is_staff),
        "new_token": request.session.pop(TOKEN_ONCE_SESSION_KEY, None),
        "otp_needed": selectors.user_has_2fa(user=request.user),
    }
    return render(request, "accounts/tokens.html", context)


@require_POST
@login_required
@require_recent_otp
@portal_errors
def token_create(request):
    form = TokenCreateForm(request.POST, staff_user=request.user.is_staff)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("accounts:token_list")
    if not token_creation_allowed(request):
        messages.error(request, "You have created many tokens in a short time; try again later.")
        return redirect("accounts:token_list")
    token, raw = services.token_create(
        user=request.user,
        name=form.cleaned_data["name"],
        read_only=form.cleaned_data["read_only"],
        expires_at=form.expires_at(),
        staff=form.cleaned_data.get("staff", False),
        code_verified_now=getattr(request, "otp_code_verified", False),
        request=request,
    )
    request.session[TOKEN_ONCE_SESSION_KEY] = {"name": token.name, "raw": raw}
    return redirect("accounts:token_list")


@require_POST
@login_required
@portal_errors
def token_revoke(request, pk):
    token = selectors.access_token_get_for_user(user=request.user, pk=pk)
    services.token_revoke(token=token, actor=request.user, request=request)
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("accounts:token_list")

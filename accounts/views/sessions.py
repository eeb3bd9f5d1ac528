"""Security page: the user's browser sessions, and revoking the others."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import selectors, services
from .common import portal_errors


@login_required
def session_list(request):
    sessions = selectors.session_list_for_user(user=request.user)
    current = request.session.session_key
    return render(request, "accounts/sessions.html", {"sessions": sessions, "current_key": current})


@require_POST
@login_required
@portal_errors
def session_revoke(request, pk):
    session = services.session_revoke(user=request.user, pk=pk, request=request)
    messages.success(request, f"The session from {session.ip_address or 'an unknown address'} is logged out.")
    return redirect("accounts:session_list")

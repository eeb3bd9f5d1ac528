"""Portal: the SSH key library (Account → SSH keys)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..forms import SSHKeyForm
from .common import portal_errors


def _render(request, form, status=200):
    keys = selectors.ssh_key_list_for_user(user=request.user).order_by("project__name", "name")
    context = {"keys": keys, "form": form}
    return render(request, "accounts/ssh_keys.html", context, status=status)


@login_required
def ssh_key_list(request):
    projects = selectors.project_list_for_user(user=request.user).order_by("name")
    return _render(request, SSHKeyForm(projects=projects, initial={"project": request.GET.get("project", "")}))


@require_POST
@login_required
@portal_errors
def ssh_key_create(request):
    projects = selectors.project_list_for_user(user=request.user).order_by("name")
    form = SSHKeyForm(request.POST, projects=projects)
    if not form.is_valid():
        return _render(request, form, status=400)
    key = services.ssh_key_create(
        user=request.user,
        name=form.cleaned_data["name"],
        public_key=form.cleaned_data["public_key"],
        project=form.cleaned_data["project"],
        request=request,
    )
    messages.success(request, f"Key {key.name} saved ({key.fingerprint}).")
    return redirect("accounts:ssh_key_list")


@require_POST
@login_required
@portal_errors
def ssh_key_delete(request, pk):
    key = selectors.ssh_key_get_for_user(user=request.user, pk=pk)
    services.ssh_key_delete(key=key, user=request.user, request=request)
    messages.success(request, f"Key {key.name} deleted. VMs built with it keep it.")
    return redirect("accounts:ssh_key_list")

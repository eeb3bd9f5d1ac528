"""Portal pages of projects: list and create, members and invitations,
settings, deletion, and the invitation link."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..choices import Role, role_at_least
from ..forms import InvitationForm, ProjectCreateForm, ProjectSettingsForm, RoleForm
from ..security import otp_confirm_url, otp_fresh_enough, require_recent_otp
from .common import form_errors, portal_errors, with_project


def _back(project):
    return redirect("accounts:project_detail", slug=project.slug)


@login_required
def project_list(request):
    projects = selectors.project_list_with_roles(user=request.user).order_by("kind", "name")
    return render(request, "accounts/project_list.html", {"projects": projects, "form": ProjectCreateForm()})


@require_POST
@login_required
@portal_errors
def project_create(request):
    form = ProjectCreateForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("accounts:project_list")
    project = services.project_create(name=form.cleaned_data["name"], owner=request.user)
    messages.success(request, f"Project {project.name} created. Invite people below.")
    return redirect("accounts:project_detail", slug=project.slug)


@with_project()
def project_detail(request, project):
    role = project.role
    can_manage = role_at_least(role, Role.ADMIN)
    context = {
        "project": project,
        "role": role,
        "can_manage": can_manage,
        "is_owner": role == Role.OWNER,
        "members": selectors.membership_list(project=project),
        "invitations": selectors.invitation_list_open(project=project) if can_manage else [],
        "invite_form": InvitationForm(),
        "settings_form": ProjectSettingsForm(initial={"name": project.name, "require_2fa": project.require_2fa}),
        "roles": Role.choices,
    }
    return render(request, "accounts/project_detail.html", context)


@require_POST
@with_project(Role.ADMIN)
def project_settings(request, project):
    form = ProjectSettingsForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return _back(project)
    require_2fa = form.cleaned_data["require_2fa"] if project.role == Role.OWNER else None
    fresh = otp_fresh_enough(request, request.POST.get("otp_token"))
    if project.require_2fa and require_2fa is False and not fresh:
        messages.info(request, "Turning off the two-factor requirement needs a current code; then save again.")
        return redirect(otp_confirm_url(reverse("accounts:project_detail", args=[project.slug])))
    project = services.project_update(
        project=project,
        actor=request.user,
        name=form.cleaned_data["name"],
        require_2fa=require_2fa,
        second_factor_fresh=fresh,
        request=request,
    )
    messages.success(request, "Project settings saved.")
    return _back(project)


@require_POST
@with_project(Role.OWNER)
@require_recent_otp
def project_delete(request, project):
    services.project_delete(project=project, actor=request.user, request=request)
    messages.success(request, f"Project {project.name} deleted.")
    return redirect("accounts:project_list")


@require_POST
@with_project(Role.ADMIN)
def member_role(request, project, pk):
    membership = selectors.membership_get_in_project(project=project, pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return _back(project)
    services.membership_role_change(
        membership=membership, actor=request.user, role=form.cleaned_data["role"], request=request
    )
    messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
    return _back(project)


@require_POST
@with_project()
def member_remove(request, project, pk):
    membership = selectors.membership_get_in_project(project=project, pk=pk)
    services.membership_remove(membership=membership, actor=request.user, request=request)
    if membership.user_id == request.user.pk:
        messages.success(request, f"You left {project.name}.")
        return redirect("accounts:project_list")
    messages.success(request, f"{membership.user.email} removed from {project.name}.")
    return _back(project)


@require_POST
@with_project(Role.ADMIN)
def invitation_create(request, project):
    form = InvitationForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return _back(project)
    invitation, _ = services.invitation_create(
        project=project,
        actor=request.user,
        email=form.cleaned_data["email"],
        role=form.cleaned_data["role"],
        request=request,
    )
    messages.success(request, f"Invitation sent to {invitation.email}.")
    return _back(project)


@require_POST
@with_project(Role.ADMIN)
def invitation_revoke(request, project, pk):
    invitation = selectors.invitation_get_in_project(project=project, pk=pk)
    services.invitation_revoke(invitation=invitation, actor=request.user, request=request)
    messages.success(request, f"Invitation to {invitation.email} withdrawn.")
    return _back(project)


@portal_errors
def invitation_accept(request, token):
    """The link in the invitation mail. Anyone with the link sees what it is;
    accepting needs an account with the invited address (a new person signs up
    with it and joins when the address is verified)."""
    invitation = selectors.invitation_get_by_token(token=token)
    if request.method == "POST" and request.user.is_authenticated:
        services.invitation_accept(invitation=invitation, user=request.user, request=request)
        messages.success(request, f"You joined {invitation.project.name}.")
        return redirect("accounts:project_detail", slug=invitation.project.slug)
    here = reverse("accounts:invitation_accept", args=[token])
    context = {"invitation": invitation, "next": here, "email_matches": None}
    if request.user.is_authenticated:
        context["email_matches"] = request.user.email.lower() == invitation.email
    return render(request, "accounts/invitation_accept.html", context)

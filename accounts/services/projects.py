from django.db import transaction
from django.db.models import ProtectedError
from django.utils.text import slugify

import audit
from controlplane.errors import Conflict, Forbidden, InvalidInput, NotFound

from .. import hooks
from ..choices import ProjectKind, Role
from ..models import Membership, Project, User
from ..selectors import project_require_role, user_has_2fa


def _unique_slug(name: str) -> str:
    base = slugify(name)[:100] or "project"
    slug, n = base, 1
    while Project.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A project needs a name.", fields={"name": ["This field is required."]})
    if len(name) > 100:
        raise InvalidInput("Use at most 100 characters.", fields={"name": ["Use at most 100 characters."]})
    return name


@transaction.atomic
def project_create(*, name: str, owner: User, kind: str = ProjectKind.TEAM) -> Project:
    name = _clean_name(name)
    project = Project.objects.create(name=name, slug=_unique_slug(name), kind=kind)
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    audit.record(actor=owner, action="project.created", target=project, project=project, details={"name": name})
    hooks.run("project_created", project=project)  # billing opens the wallet
    return project


@transaction.atomic
def project_update(
    *,
    project: Project,
    actor: User,
    name: str | None = None,
    require_2fa: bool | None = None,
    second_factor_fresh: bool = False,
    request=None,
) -> Project:
    """Rename (admin) or change the 2FA requirement (owner).

    An owner can only require 2FA after setting it up: the rule applies to them too.
    Turning the requirement off needs a fresh second factor (``second_factor_fresh``:
    a code entered now or recently in this session, never a token alone).
    """
    project_require_role(user=actor, project=project, role=Role.OWNER if require_2fa is not None else Role.ADMIN)
    project = Project.objects.select_for_update().get(pk=project.pk)
    changes = {}
    if name is not None and _clean_name(name) != project.name:
        changes["name"] = [project.name, _clean_name(name)]
        project.name = _clean_name(name)
    if require_2fa is not None and require_2fa != project.require_2fa:
        if require_2fa and not user_has_2fa(user=actor):
            raise Conflict("Set up two-factor authentication for yourself before requiring it of the project.")
        if not require_2fa and not second_factor_fresh:
            raise Forbidden(
                "Turning off the two-factor requirement needs a current code: send it in the X-OTP-Token header.",
                code="otp_required",
            )
        changes["require_2fa"] = [project.require_2fa, require_2fa]
        project.require_2fa = require_2fa
    if changes:
        project.save(update_fields=["name", "require_2fa"])
        audit.record(actor=actor, action="project.updated", target=project, details=changes, request=request)
    return project


@transaction.atomic
def project_delete(*, project: Project, actor: User, request=None) -> None:
    """Delete a team project (owner only). A project that still has VMs cannot go."""
    project_require_role(user=actor, project=project, role=Role.OWNER)
    if project.kind == ProjectKind.PERSONAL:
        raise Conflict("A personal project cannot be deleted.")
    project_id, details = project.pk, {"name": project.name, "slug": project.slug}
    try:
        with transaction.atomic():
            project.delete()
    except ProtectedError:
        raise Conflict("This project still has virtual machines; delete them first.") from None
    audit.record(actor=actor, action="project.deleted", project=project_id, details=details, request=request)


def _locked_memberships(project: Project) -> list[Membership]:
    """Every membership of the project, locked in a stable order (owner counts stay true)."""
    return list(Membership.objects.select_for_update().filter(project=project).order_by("pk"))


def _owner_count(memberships: list[Membership]) -> int:
    return sum(1 for m in memberships if m.role == Role.OWNER)


@transaction.atomic
def membership_add(*, project: Project, user: User, role: str, actor, request=None, via: str = "") -> Membership:
    """Add a user to a project (used by invitation acceptance). Already a member: unchanged."""
    membership, created = Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if created:
        details = {"email": user.email, "role": role, **({"via": via} if via else {})}
        audit.record(actor=actor, action="member.added", target=project, details=details, request=request)
    return membership


@transaction.atomic
def membership_role_change(*, membership: Membership, actor: User, role: str, request=None) -> Membership:
    """Change a member's role. Admins manage admins, members and viewers;
    only an owner grants or takes away the owner role; the last owner stays."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}.", fields={"role": [f"Choose one of {', '.join(Role.values)}."]})
    project = membership.project
    project_require_role(user=actor, project=project, role=Role.ADMIN)
    locked = {m.pk: m for m in _locked_memberships(project)}
    current = locked.get(membership.pk)
    if current is None:
        raise NotFound("No such member.")
    old = current.role
    if old == role:
        return current
    if Role.OWNER in (old, role):
        project_require_role(user=actor, project=project, role=Role.OWNER)
    if old == Role.OWNER and _owner_count(list(locked.values())) == 1:
        raise Conflict("The last owner cannot be demoted; make someone else owner first.")
    current.role = role
    current.save(update_fields=["role"])
    audit.record(
        actor=actor,
        action="member.role_changed",
        target=project,
        details={"email": current.user.email, "from": old, "to": role},
        request=request,
    )
    return current


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User, request=None) -> None:
    """Remove a member (admin; owners only by an owner) or leave a project
    yourself. The last owner cannot go."""
    project = membership.project
    leaving = membership.user_id == actor.pk
    if not leaving:
        project_require_role(user=actor, project=project, role=Role.ADMIN)
    locked = {m.pk: m for m in _locked_memberships(project)}
    current = locked.get(membership.pk)
    if current is None:
        raise NotFound("No such member.")
    if current.role == Role.OWNER:
        if not leaving:
            project_require_role(user=actor, project=project, role=Role.OWNER)
        if _owner_count(list(locked.values())) == 1:
            raise Conflict("The last owner cannot leave or be removed; make someone else owner first.")
    email, role = current.user.email, current.role
    current.delete()
    audit.record(
        actor=actor,
        action="member.removed",
        target=project,
        details={"email": email, "role": role, **({"left": True} if leaving else {})},
        request=request,
    )

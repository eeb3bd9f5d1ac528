import hmac
from dataclasses import dataclass

from django.contrib.sessions.models import Session
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from controlplane.errors import Forbidden, NotFound

from .choices import Role, role_at_least
from .hashing import sha256, token_split
from .models import AccessToken, Invitation, Membership, Project, SSHKey, TOTPDevice, User, UserSession


def project_list_for_user(*, user: User) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user).distinct()


def project_list_with_roles(*, user: User) -> QuerySet[Project]:
    """The user's projects with ``role`` (theirs) and ``member_count`` annotated."""
    role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return Project.objects.filter(memberships__user=user).annotate(
        role=Subquery(role), member_count=Count("memberships", distinct=True)
    )


def membership_get(*, user: User, project: Project) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, project=project).first()


def project_role(*, user: User, project: Project) -> str | None:
    membership = membership_get(user=user, project=project)
    return membership.role if membership else None


def user_has_2fa(*, user: User) -> bool:
    """A confirmed TOTP device (backup codes alone do not count)."""
    return user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@dataclass(frozen=True)
class TwoFactorState:
    has_device: bool
    required_by: str | None  # name of a project that requires 2FA of the user, if any

    @property
    def enrolment_required(self) -> bool:
        return self.required_by is not None and not self.has_device


def _two_factor_annotations(user_ref: str) -> dict:
    """``has_device`` and ``required_by`` of the user at ``user_ref``, as query annotations."""
    required = Project.objects.filter(memberships__user=OuterRef(user_ref), require_2fa=True).values("name")[:1]
    return {
        "has_device": Exists(TOTPDevice.objects.filter(user=OuterRef(user_ref), confirmed=True)),
        "required_by": Subquery(required),
    }


def two_factor_state(*, user: User) -> TwoFactorState:
    """Whether the user has 2FA and whether a project requires it: one query."""
    row = (
        User.objects.filter(pk=user.pk).annotate(**_two_factor_annotations("pk")).values("has_device", "required_by")
    ).first() or {"has_device": False, "required_by": None}
    return TwoFactorState(has_device=row["has_device"], required_by=row["required_by"])


def _access_check(*, user: User, project: Project, actual: str | None, role: str, staff_override: bool) -> str | None:
    if staff_override and user.is_staff:
        return actual
    if actual is None:
        raise NotFound("No such project.")
    if not role_at_least(actual, role):
        needed, have = Role(role).label.lower(), Role(actual).label.lower()
        raise Forbidden(f"This needs the {needed} role in project {project.name}; you are {have}.")
    if project.require_2fa and not user_has_2fa(user=user):
        raise Forbidden(
            f"Project {project.name} requires two-factor authentication: set it up under Security first.",
            code="two_factor_required",
        )
    return actual


def project_require_role(
    *, user: User, project: Project, role: str = Role.VIEWER, staff_override: bool = False
) -> str | None:
    """Return the user's role in the project (None: an operator let in by ``staff_override``) or raise.

    Not being a member at all is a 404 (the project's existence is not
    revealed); being a member with too weak a role is a 403, and so is lacking
    2FA in a project that requires it (code ``two_factor_required``). With
    ``staff_override`` operators (``is_staff``) pass whatever their membership.
    """
    actual = project_role(user=user, project=project)
    return _access_check(user=user, project=project, actual=actual, role=role, staff_override=staff_override)


def project_for_user(*, user: User, slug: str, role: str = Role.VIEWER, staff_override: bool = False) -> Project:
    """The project ``slug`` if ``user`` holds ``role`` in it, with ``project.role`` set to theirs (one query).

    The access rule of every project-scoped page and API endpoint
    (accounts.views.common.with_project, controlplane.api.ProjectScopedMixin);
    the errors are those of ``project_require_role``: no such project or not a
    member is NotFound (404), too weak a role or missing 2FA is Forbidden (403).
    """
    if not user.is_authenticated:
        raise NotFound("No such project.")
    theirs = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    project = Project.objects.filter(slug=slug).annotate(role=Subquery(theirs)).first()
    if project is None:
        raise NotFound("No such project.")
    _access_check(user=user, project=project, actual=project.role, role=role, staff_override=staff_override)
    return project


def membership_list(*, project: Project) -> QuerySet[Membership]:
    """Members with their user and ``has_2fa`` annotated."""
    return (
        Membership.objects.filter(project=project)
        .select_related("user")
        .annotate(has_2fa=Exists(TOTPDevice.objects.filter(user=OuterRef("user"), confirmed=True)))
        .order_by("user__email")
    )


def membership_get_in_project(*, project: Project, pk) -> Membership:
    membership = Membership.objects.select_related("user", "project").filter(project=project, pk=pk).first()
    if membership is None:
        raise NotFound("No such member.")
    return membership


def invitation_list_open(*, project: Project) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        project=project, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("invited_by")


def invitation_get_in_project(*, project: Project, pk) -> Invitation:
    invitation = Invitation.objects.select_related("project").filter(project=project, pk=pk).first()
    if invitation is None:
        raise NotFound("No such invitation.")
    return invitation


def invitation_get_by_token(*, token: str) -> Invitation:
    invitation = Invitation.objects.select_related("project", "invited_by").filter(token_hash=sha256(token)).first()
    if invitation is None:
        raise NotFound("This invitation link is not valid.")
    return invitation


def access_token_list_for_user(*, user: User) -> QuerySet[AccessToken]:
    return AccessToken.objects.filter(user=user)


def access_token_get_for_user(*, user: User, pk) -> AccessToken:
    token = AccessToken.objects.filter(user=user, pk=pk).first()
    if token is None:
        raise NotFound("No such token.")
    return token


def access_token_find(*, raw: str) -> AccessToken | None:
    """The token whose prefix and secret match ``raw`` (revoked or expired
    ones included: the caller says why they are refused), else None."""
    parts = token_split(raw)
    if parts is None:
        return None
    prefix, secret = parts
    token = (
        AccessToken.objects.select_related("user")
        .annotate(**_two_factor_annotations("user_id"))
        .filter(prefix=prefix)
        .first()
    )
    if token is None or not hmac.compare_digest(token.secret_hash, sha256(secret)):
        return None
    # The owner's two-factor state comes with the token (one query per API request, not two).
    token.two_factor = TwoFactorState(has_device=token.has_device, required_by=token.required_by)
    return token


def session_list_for_user(*, user: User) -> list:
    """The user's sessions that still exist in the session store, most recent first (two queries)."""
    sessions = list(UserSession.objects.filter(user=user)[:50])
    alive = set(
        Session.objects.filter(
            session_key__in=[s.session_key for s in sessions], expire_date__gt=timezone.now()
        ).values_list("session_key", flat=True)
    )
    return [s for s in sessions if s.session_key in alive]


def ssh_key_list_for_user(*, user: User) -> QuerySet[SSHKey]:
    """Every saved key the user may use: their personal keys and those of their projects."""
    mine = Q(user=user, project__isnull=True)
    shared = Q(project__in=Project.objects.filter(memberships__user=user))
    return SSHKey.objects.filter(mine | shared).select_related("project", "user")


def ssh_key_list_available(*, user: User, project: Project) -> QuerySet[SSHKey]:
    """Keys offered when a VM is built (or rebuilt) in ``project``: the user's personal
    keys and the project's. The caller has checked the user is a member."""
    return SSHKey.objects.filter(Q(user=user, project__isnull=True) | Q(project=project)).select_related("project")


def ssh_key_get_for_user(*, user: User, pk) -> SSHKey:
    key = ssh_key_list_for_user(user=user).filter(pk=pk).first()
    if key is None:
        raise NotFound("No such SSH key.")
    return key


def ssh_key_get_available(*, user: User, project: Project, pk) -> SSHKey:
    key = ssh_key_list_available(user=user, project=project).filter(pk=pk).first()
    if key is None:
        raise NotFound("No such SSH key in your library or this project.")
    return key

from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

import audit
from controlplane.errors import Conflict, Forbidden, InvalidInput

from .. import emails
from ..choices import ProjectKind, Role
from ..hashing import invitation_token_generate, sha256
from ..models import Invitation, Membership, Project, User
from ..selectors import project_require_role
from .projects import membership_add


@transaction.atomic
def invitation_create(
    *, project: Project, actor: User, email: str, role: str = Role.MEMBER, request=None
) -> tuple[Invitation, str]:
    """Invite an address to a team project (admin; owner to invite an owner).

    Returns the invitation and the raw token of its link; the link is mailed
    after commit and the token is not stored. Inviting the same address again
    replaces the open invitation (a fresh link and expiry).
    """
    project_require_role(user=actor, project=project, role=Role.ADMIN)
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}.", fields={"role": [f"Choose one of {', '.join(Role.values)}."]})
    if role == Role.OWNER:
        project_require_role(user=actor, project=project, role=Role.OWNER)
    if project.kind == ProjectKind.PERSONAL:
        raise Conflict("A personal project has one member; create a team project to invite people.")
    email = User.objects.normalize_email((email or "").strip()).lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput("Enter a valid email address.", fields={"email": ["Enter a valid email address."]}) from None
    if Membership.objects.filter(project=project, user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member of {project.name}.")
    now = timezone.now()
    Invitation.objects.filter(project=project, email=email, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=now
    )
    token = invitation_token_generate()
    invitation = Invitation.objects.create(
        project=project,
        email=email,
        role=role,
        token_hash=sha256(token),
        invited_by=actor,
        expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    transaction.on_commit(lambda: emails.invitation_send(invitation=invitation, token=token))
    audit.record(
        actor=actor, action="member.invited", target=project, details={"email": email, "role": role}, request=request
    )
    return invitation, token


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User, request=None) -> None:
    project_require_role(user=actor, project=invitation.project, role=Role.ADMIN)
    updated = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated:
        raise Conflict("This invitation was already accepted or revoked.")
    audit.record(
        actor=actor,
        action="member.invitation_revoked",
        target=invitation.project,
        details={"email": invitation.email, "role": invitation.role},
        request=request,
    )


def _user_owns_address(user: User, email: str) -> bool:
    if user.email.lower() == email:
        return True
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User, request=None) -> Membership:
    """Join the project of an open invitation sent to one of the user's
    verified addresses. Already a member: the current role is kept."""
    invitation = Invitation.objects.select_for_update().select_related("project").get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise Conflict("This invitation has already been used.")
    if invitation.revoked_at is not None or invitation.expires_at <= timezone.now():
        raise Conflict("This invitation has expired or was withdrawn; ask for a new one.")
    if not _user_owns_address(user, invitation.email):
        raise Forbidden(f"This invitation was sent to {invitation.email}; log in with that address to accept it.")
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership_add(
        project=invitation.project, user=user, role=invitation.role, actor=user, request=request, via="invitation"
    )


def invitation_accept_for_email(*, user: User, email: str, request=None) -> list[Membership]:
    """Accept every open invitation to an address the user just verified (a
    person invited before they had an account joins on sign-up)."""
    pending = Invitation.objects.filter(
        email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )
    return [invitation_accept(invitation=invitation, user=user, request=request) for invitation in pending]

from allauth.account.models import EmailAddress
from django.db import transaction
from django.db.models import F
from django.utils import timezone

import audit

from .. import hooks
from ..choices import ProjectKind
from ..models import AccessToken, User
from .projects import project_create


def _user_created(user: User, *, actor, request=None) -> None:
    project_create(name=f"{user.get_short_name()}'s project", owner=user, kind=ProjectKind.PERSONAL)
    audit.record(
        actor=actor or user, action="user.created", target=user, details={"email": user.email}, request=request
    )


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None,
    full_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    actor=None,
) -> User:
    """Create a user (operators, seeding) with a personal project in which the user is owner.

    The address counts as verified: whoever creates the account vouches for it.
    """
    manager = User.objects
    create = manager.create_superuser if is_superuser else manager.create_user
    user = create(email=email, password=password, full_name=full_name, is_staff=is_staff)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    _user_created(user, actor=actor)
    user_email_verified(user=user, email=user.email)
    return user


@transaction.atomic
def user_register(*, user: User, actor=None, request=None) -> User:
    """Save a user built by a sign-up form (email and password hash already set)
    and give it its personal project. Sign-up, Google sign-in and the admin's
    add form all end here. The email address is verified by allauth afterwards."""
    user.email = User.objects.normalize_email(user.email).lower()
    user.save()
    _user_created(user, actor=actor, request=request)
    return user


@transaction.atomic
def user_email_verified(*, user: User, email: str, request=None) -> None:
    """An address of ``user`` is verified (the confirmation link, a provider
    that vouches for it, or an operator creating the account): the apps that
    registered for it act (billing grants the sign-up trial credit)."""
    hooks.run("email_verified", user=user, email=email.lower(), request=request)


@transaction.atomic
def user_deactivate(*, user: User, actor, request=None) -> int:
    """Stop the user at once: no login, every session ended, every token revoked.

    VMs and projects are untouched (suspend the project for that). Returns the
    number of tokens revoked.
    """
    User.objects.filter(pk=user.pk).update(is_active=False, session_generation=F("session_generation") + 1)
    revoked = AccessToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    user.refresh_from_db(fields=["is_active", "session_generation"])
    audit.record(
        actor=actor, action="user.deactivated", target=user, details={"tokens_revoked": revoked}, request=request
    )
    return revoked


@transaction.atomic
def user_reactivate(*, user: User, actor, request=None) -> None:
    """Let the user log in again. Revoked tokens stay revoked."""
    User.objects.filter(pk=user.pk).update(is_active=True)
    user.refresh_from_db(fields=["is_active"])
    audit.record(actor=actor, action="user.reactivated", target=user, request=request)


def user_privileges_record(*, user: User, actor, changes: dict, request=None) -> None:
    """Note a change of operator privileges (staff, superuser, groups, permissions) made
    in the admin: ``changes`` is ``{field: [old, new]}``. Critical in the security feed."""
    audit.record(actor=actor, action="user.privileges_changed", target=user, details=changes, request=request)


@transaction.atomic
def user_profile_update(*, user: User, full_name: str, time_zone: str, request=None) -> User:
    """The Profile page: a name and the zone the portal shows times in ("" = the operator's
    default). ``time_zone`` must be a zone of the tz database (the form's choices are)."""
    changes = {}
    for field, value in (("full_name", full_name.strip()), ("time_zone", time_zone)):
        if getattr(user, field) != value:
            changes[field] = [getattr(user, field), value]
            setattr(user, field, value)
    if changes:
        user.save(update_fields=list(changes))
        audit.record(actor=user, action="user.profile_updated", target=user, details=changes, request=request)
    return user

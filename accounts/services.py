from django.db import transaction
from django.utils.text import slugify

import audit

from .choices import ProjectKind, Role
from .models import Membership, Project, User


def _unique_slug(name: str) -> str:
    base = slugify(name)[:100] or "project"
    slug, n = base, 1
    while Project.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


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
    """Create a user with a personal project in which the user is owner."""
    manager = User.objects
    create = manager.create_superuser if is_superuser else manager.create_user
    user = create(email=email, password=password, full_name=full_name, is_staff=is_staff)
    project_create(name=f"{user.get_short_name()}'s project", owner=user, kind=ProjectKind.PERSONAL)
    audit.record(actor=actor or user, action="user.created", target=user, details={"email": user.email})
    return user


@transaction.atomic
def project_create(*, name: str, owner: User, kind: str = ProjectKind.TEAM) -> Project:
    project = Project.objects.create(name=name, slug=_unique_slug(name), kind=kind)
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    audit.record(actor=owner, action="project.created", target=project, project=project, details={"name": name})
    return project

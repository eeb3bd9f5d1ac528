from django.db.models import QuerySet

from controlplane.errors import Forbidden, NotFound

from .choices import Role, role_at_least
from .models import Membership, Project, User


def project_list_for_user(*, user: User) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user).distinct()


def membership_get(*, user: User, project: Project) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, project=project).first()


def project_role(*, user: User, project: Project) -> str | None:
    membership = membership_get(user=user, project=project)
    return membership.role if membership else None


def project_require_role(*, user: User, project: Project, role: str = Role.VIEWER) -> str:
    """Return the user's role in the project or raise.

    Not being a member at all is a 404 (the project's existence is not
    revealed); being a member with too weak a role is a 403.
    """
    actual = project_role(user=user, project=project)
    if actual is None:
        raise NotFound("No such project.")
    if not role_at_least(actual, role):
        needed, have = Role(role).label.lower(), Role(actual).label.lower()
        raise Forbidden(f"This needs the {needed} role in project {project.name}; you are {have}.")
    return actual

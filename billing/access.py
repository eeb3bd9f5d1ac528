"""Who may see or change a project's billing: members by role, and staff."""

from accounts.choices import Role
from accounts.models import Project
from accounts.selectors import project_require_role
from controlplane.errors import NotFound


def project_for(*, user, slug: str, role: str = Role.VIEWER) -> Project:
    """The project if ``user`` has ``role`` in it (operators always do); a
    project the user is not in is a 404, too weak a role a 403."""
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise NotFound("No such project.")
    if not (user.is_authenticated and user.is_staff):
        project_require_role(user=user, project=project, role=role)
    return project

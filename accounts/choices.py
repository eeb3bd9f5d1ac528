from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"  # everything, including deleting the project
    ADMIN = "admin", "Admin"  # members, billing and everything a member can do
    MEMBER = "member", "Member"  # operate VMs and requests
    VIEWER = "viewer", "Viewer"  # read only


# Roles ordered from most to least powerful; a role satisfies every role after it.
ROLE_ORDER = [Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER]


def role_at_least(role: str, required: str) -> bool:
    return ROLE_ORDER.index(role) <= ROLE_ORDER.index(required)


class ProjectKind(models.TextChoices):
    PERSONAL = "personal", "Personal"  # created with the user, one per user
    TEAM = "team", "Team"  # created by a user, members invited

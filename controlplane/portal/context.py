"""Navigation context for every portal page: the user's projects (one query)
and the current project (from the URL, else the last one visited)."""

from accounts.choices import Role, role_at_least
from accounts.selectors import project_list_with_roles

SESSION_KEY = "portal_project"

# Pages that exist for every project: the switcher keeps the user on the same kind of page.
SECTIONS = {
    "portal:dashboard": "dashboard",
    "compute:vm_list": "vms",
    "compute:vm_detail": "vms",
    "compute:request_list": "requests",
    "portal:request_new": "requests",
    "billing:wallet": "billing",
    "billing:usage": "billing",
    "billing:documents": "billing",
    "billing:profile": "billing",
    "accounts:project_detail": "members",
    "audit:project_events": "audit",
    "notifications:webhooks": "webhooks",
    "notifications:webhook_detail": "webhooks",
}

SECURITY_VIEWS = {
    "accounts:two_factor",
    "accounts:two_factor_setup",
    "accounts:two_factor_disable",
    "accounts:two_factor_backup_codes",
    "accounts:token_list",
    "accounts:session_list",
    "account_email",
    "account_change_password",
}


def current_project(request, projects):
    """The project named by the URL's ``slug`` if the user is in it, else the one
    remembered in the session, else the first (the personal project sorts first)."""
    match = request.resolver_match
    slug = match.kwargs.get("slug") if match is not None else None
    by_slug = {project.slug: project for project in projects}
    if slug in by_slug:
        if request.session.get(SESSION_KEY) != slug:
            request.session[SESSION_KEY] = slug
        return by_slug[slug]
    remembered = by_slug.get(request.session.get(SESSION_KEY))
    return remembered or (projects[0] if projects else None)


def portal_nav(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    projects = list(project_list_with_roles(user=user).order_by("kind", "name"))
    project = current_project(request, projects)
    match = request.resolver_match
    view_name = match.view_name if match is not None else ""
    return {
        "nav_projects": projects,
        "nav_project": project,
        "nav_section": SECTIONS.get(view_name, ""),
        "nav_view": view_name,
        "nav_is_admin": bool(project and role_at_least(project.role, Role.ADMIN)),
        "nav_security": view_name in SECURITY_VIEWS,
    }

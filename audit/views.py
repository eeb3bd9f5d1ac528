from django.core.paginator import Paginator
from django.shortcuts import render

from accounts.choices import Role
from accounts.views.common import with_project

from . import selectors
from .choices import Action

PAGE_SIZE = 50


@with_project(Role.ADMIN)
def project_events(request, project):
    """The project's audit log, newest first, for its admins and owners."""
    action = request.GET.get("action", "")
    if action not in Action.values:
        action = ""
    events = selectors.event_list_for_project(project=project, action=action)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"project": project, "page": page, "action": action, "actions": Action.choices}
    return render(request, "audit/project_events.html", context)

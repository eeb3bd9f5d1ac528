from django.contrib import admin
from django.core.paginator import Paginator
from django.shortcuts import render

from accounts.choices import Role
from accounts.views.common import with_project

from . import selectors
from .choices import Action
from .severity import Severity, severity_of

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


SECURITY_FEED_SIZE = 100


def security_events(request):
    """Operators' security feed (``/admin/security/``, behind the OTP admin): the latest
    security events with their severity, filtered by the query string; the table
    polls itself every few seconds (htmx), like the VM list."""
    filters = {
        "severity": request.GET.get("severity") if request.GET.get("severity") in Severity.values else Severity.INFO,
        "action": request.GET.get("action") if severity_of(request.GET.get("action", "")) else "",
        "actor": request.GET.get("actor", "").strip()[:200],
        "ip": request.GET.get("ip", "").strip()[:45],
    }
    events = selectors.security_event_list(**filters)[:SECURITY_FEED_SIZE]
    context = {
        **admin.site.each_context(request),
        "title": "Security events",
        "rows": [(event, severity_of(event.action)) for event in events],
        "filters": filters,
        "severities": Severity.choices,
        "actions": [(value, label) for value, label in Action.choices if severity_of(value)],
        "poll_seconds": 5,
    }
    template = "audit/_security_table.html" if request.htmx else "audit/security_events.html"
    return render(request, template, context)

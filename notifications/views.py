"""Portal: notifications (bell, list, mark read, email preferences) and a project's
webhook endpoints (owners and admins): create, edit, rotate the secret, delete, the
delivery log and redelivery."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.choices import Role
from accounts.views.common import with_project

from . import selectors, services
from .events import AUDIT_ROUTES
from .forms import PreferencesForm, WebhookEndpointForm

PAGE_SIZE = 50
SECRET_ONCE_SESSION_KEY = "webhook_secret_once"


@login_required
def notification_list(request):
    page = Paginator(selectors.notification_list_for_user(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    unread = selectors.notification_unread_count(user=request.user)
    return render(request, "notifications/list.html", {"page": page, "unread": unread})


@require_POST
@login_required
def notification_read(request):
    """Mark one (``id``) or all notifications read, then go on to ``next`` or the list."""
    ids = [int(pk) for pk in request.POST.getlist("id") if pk.isdigit()] or None
    services.notification_mark_read(user=request.user, ids=ids)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    return redirect(target or "notifications:list")


@login_required
def preferences(request):
    rows = selectors.preferences_for_user(user=request.user)
    form = PreferencesForm(request.POST or None, preferences=rows)
    if request.method == "POST" and form.is_valid():
        services.preferences_set(user=request.user, email=form.email_choices())
        messages.success(request, "Email preferences saved.")
        return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {"form": form})


def _sources() -> set[str]:
    return {route.event_type for route in AUDIT_ROUTES.values()}


@with_project(Role.ADMIN)
def webhook_list(request, project):
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint, secret = services.webhook_endpoint_create(
            actor=request.user, project=project, request=request, **form.cleaned_data
        )
        request.session[SECRET_ONCE_SESSION_KEY] = {"id": endpoint.pk, "secret": secret}
        return redirect("notifications:webhook_detail", slug=project.slug, pk=endpoint.pk)
    context = {
        "project": project,
        "endpoints": selectors.webhook_endpoint_list(project=project),
        "form": form,
        "sources": _sources(),
    }
    return render(request, "notifications/webhooks.html", context, status=400 if form.errors else 200)


@with_project(Role.ADMIN)
def webhook_detail(request, project, pk):
    endpoint = selectors.webhook_endpoint_get(project=project, pk=pk)
    initial = {"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_types}
    form = WebhookEndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.webhook_endpoint_update(endpoint=endpoint, actor=request.user, request=request, **form.cleaned_data)
        messages.success(request, "Webhook saved.")
        return redirect("notifications:webhook_detail", slug=project.slug, pk=endpoint.pk)
    once = request.session.pop(SECRET_ONCE_SESSION_KEY, None)
    deliveries = Paginator(selectors.webhook_delivery_list(endpoint=endpoint).prefetch_related("attempt_log"), 25)
    context = {
        "project": project,
        "endpoint": endpoint,
        "form": form,
        "secret": once["secret"] if once and once["id"] == endpoint.pk else None,
        "deliveries": deliveries.get_page(request.GET.get("page")),
        "sources": _sources(),
    }
    return render(request, "notifications/webhook_detail.html", context, status=400 if form.errors else 200)


@require_POST
@with_project(Role.ADMIN)
def webhook_action(request, project, pk):
    """enable / disable / rotate / delete, named by the button's ``do``."""
    endpoint = selectors.webhook_endpoint_get(project=project, pk=pk)
    action = request.POST.get("do", "")
    if action == "delete":
        services.webhook_endpoint_delete(endpoint=endpoint, actor=request.user, request=request)
        messages.success(request, f"Webhook {endpoint.url} deleted.")
        return redirect("notifications:webhooks", slug=project.slug)
    if action == "rotate":
        secret = services.webhook_secret_rotate(endpoint=endpoint, actor=request.user, request=request)
        request.session[SECRET_ONCE_SESSION_KEY] = {"id": endpoint.pk, "secret": secret}
    elif action in ("enable", "disable"):
        services.webhook_endpoint_update(
            endpoint=endpoint, actor=request.user, enabled=action == "enable", request=request
        )
        messages.success(request, f"Webhook {action}d.")
    return redirect("notifications:webhook_detail", slug=project.slug, pk=endpoint.pk)


@require_POST
@with_project(Role.ADMIN)
def webhook_redeliver(request, project, pk, delivery_pk):
    endpoint = selectors.webhook_endpoint_get(project=project, pk=pk)
    delivery = selectors.webhook_delivery_get(endpoint=endpoint, pk=delivery_pk)
    services.webhook_delivery_redeliver(delivery=delivery, actor=request.user)
    messages.success(request, f"Delivery {delivery.message_id} queued again.")
    return redirect("notifications:webhook_detail", slug=project.slug, pk=endpoint.pk)

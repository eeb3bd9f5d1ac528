from django.db.models import Q, QuerySet

from accounts.choices import Role
from accounts.models import Project, User
from controlplane.errors import NotFound

from .choices import EMAIL_OFF_BY_DEFAULT, EventType
from .models import Notification, NotificationPreference, WebhookDelivery, WebhookEndpoint


def notification_list_for_user(*, user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).select_related("project")


def notification_unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def preferences_for_user(*, user: User) -> list[dict]:
    """Every event type with the user's email choice (or the default), in EventType order."""
    chosen = dict(NotificationPreference.objects.filter(user=user).values_list("event_type", "email"))
    return [
        {"event_type": value, "label": label, "email": chosen.get(value, value not in EMAIL_OFF_BY_DEFAULT)}
        for value, label in EventType.choices
    ]


def webhook_endpoint_list(*, project: Project | None) -> QuerySet[WebhookEndpoint]:
    """A project's endpoints, or the global ones (``project=None``). The caller checked the role."""
    return WebhookEndpoint.objects.filter(project=project).select_related("created_by")


def webhook_endpoint_get(*, project: Project | None, pk) -> WebhookEndpoint:
    endpoint = webhook_endpoint_list(project=project).filter(pk=pk).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def webhook_delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint).select_related("endpoint")


def webhook_delivery_get(*, endpoint: WebhookEndpoint, pk) -> WebhookDelivery:
    delivery = webhook_delivery_list(endpoint=endpoint).filter(pk=pk).first()
    if delivery is None:
        raise NotFound("No such delivery.")
    return delivery


def webhook_endpoint_list_for_user(*, user: User) -> QuerySet[WebhookEndpoint]:
    """Endpoints the user manages: of projects where they are owner or admin, and the
    global ones when they are an operator."""
    admin_of = Project.objects.filter(memberships__user=user, memberships__role__in=[Role.OWNER, Role.ADMIN])
    visible = Q(project__in=admin_of)
    if user.is_staff:
        visible |= Q(project__isnull=True)
    return WebhookEndpoint.objects.filter(visible).select_related("project", "created_by")


def webhook_delivery_list_for_user(*, user: User) -> QuerySet[WebhookDelivery]:
    endpoints = webhook_endpoint_list_for_user(user=user)
    return WebhookDelivery.objects.filter(endpoint__in=endpoints).select_related("endpoint")

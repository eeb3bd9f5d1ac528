import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from compute.fields import EncryptedJSONField

from .choices import DeliveryState, EmailState, EventType


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class RelayCursor(models.Model):
    """How far the relay has read the audit log: every event with ``id <= last_event_id``
    has been turned into notifications and deliveries (one row, ``name="audit"``)."""

    name = models.CharField(max_length=40, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.name} at event {self.last_event_id}"


class Notification(models.Model):
    """One event for one person: shown in the portal (bell) and, unless they turned it
    off, emailed. ``audit_event_id`` is the audit event it came from."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    project = models.ForeignKey(
        "accounts.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    audit_event_id = models.BigIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True, help_text="Portal path of the thing it is about.")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    email_state = models.CharField(max_length=16, choices=EmailState.choices, default=EmailState.PENDING)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_lease_until = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "audit_event_id"], name="notification_once_per_event"),
        ]
        indexes = [
            models.Index(fields=["user", "-id"], name="notification_user_idx"),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread_idx"),
            models.Index(fields=["email_state"], condition=Q(email_state="pending"), name="notification_email_due_idx"),
        ]

    def __str__(self):
        return f"{self.title} → {self.user}"


class NotificationPreference(models.Model):
    """A user's choice for one event type; no row means the default (see EMAIL_OFF_BY_DEFAULT)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    email = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "event_type"], name="preference_unique")]

    def __str__(self):
        return f"{self.user}: {self.event_type} email {'on' if self.email else 'off'}"


class WebhookEndpoint(models.Model):
    """A URL that receives signed event payloads (Standard Webhooks). ``project`` empty
    means global: an operator's endpoint that gets the events of every project."""

    project = models.ForeignKey(
        "accounts.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text="Event type names this endpoint receives.")
    signing = EncryptedJSONField(help_text="{'secret': 'whsec_…'}, encrypted at rest.")
    enabled = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="webhook_endpoints"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return self.url

    @property
    def secret(self) -> str:
        return self.signing.get("secret", "")

    @property
    def is_global(self) -> bool:
        return self.project_id is None


class WebhookDelivery(models.Model):
    """One event for one endpoint. ``message_id`` is the ``webhook-id`` header: the same
    on every attempt and redelivery, so a receiver can drop repeats."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    audit_event_id = models.BigIntegerField()
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    message_id = models.CharField(max_length=64, unique=True, default=new_message_id, editable=False)
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "audit_event_id"], name="delivery_once_per_event"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(state="pending"), name="delivery_due_idx"),
            models.Index(fields=["endpoint", "-id"], name="delivery_endpoint_idx"),
        ]

    def __str__(self):
        return f"{self.event_type} → {self.endpoint} ({self.state})"


class WebhookAttempt(models.Model):
    """The delivery log: one row per HTTP attempt with the response code (or the error)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField(help_text="When the request was sent.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    response_body = models.CharField(max_length=500, blank=True, help_text="The start of the response body.")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.status_code or self.error}"

from django.conf import settings
from django.db import models

from .choices import Action


class AuditEvent(models.Model):
    """One append-only, hash-chained event. Written only by ``audit.record()``.

    ``hash`` is SHA-256 over ``prev_hash`` + the canonical JSON of the event's
    content (see ``audit.chain``); ``prev_hash`` is the hash of the event
    before it in id order, or of the latest retention checkpoint. On
    PostgreSQL a trigger rejects UPDATE and DELETE (migration 0002).

    ``actor_user`` and ``project`` are foreign keys without database
    constraints and with DO_NOTHING: deleting a user or project never touches
    (and so never breaks) the log.
    """

    created_at = models.DateTimeField(db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    actor = models.CharField(max_length=200, help_text="User email or system actor such as worker:host.")
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True, help_text="app_label.model of the target.")
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    project = models.ForeignKey(
        "accounts.Project",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,  # audit_event_project_idx (project, -id) serves project filters
    )
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.CharField(max_length=45, blank=True, help_text="Client address (trusted proxies honoured).")
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["project", "-id"], name="audit_event_project_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_event_target_idx"),
            models.Index(fields=["actor"], name="audit_event_actor_idx"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_repr}"

    @property
    def action_label(self) -> str:
        try:
            return Action(self.action).label
        except ValueError:
            return self.action


class AuditCheckpoint(models.Model):
    """Left by ``audit_retention``: the last removed event, so the rest still chains.

    The first event after ``last_event_id`` has ``prev_hash == last_event_hash``.
    Append-only like the events (trigger in migration 0002).
    """

    created_at = models.DateTimeField()
    last_event_id = models.BigIntegerField(unique=True)
    last_event_hash = models.CharField(max_length=64)
    last_event_created_at = models.DateTimeField()
    events_removed = models.PositiveIntegerField()
    cutoff = models.DateTimeField(help_text="Events created before this were removed.")
    archive_path = models.CharField(max_length=500)
    archive_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["-last_event_id"]

    def __str__(self):
        return f"checkpoint after event {self.last_event_id} ({self.events_removed} removed)"

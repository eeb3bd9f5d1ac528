from django.db import models


class WorkerHeartbeat(models.Model):
    """Written by every worker process every few seconds (see workers.heartbeat)."""

    hostname = models.CharField(max_length=200, primary_key=True)
    queues = models.JSONField(default=list)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self):
        return self.hostname

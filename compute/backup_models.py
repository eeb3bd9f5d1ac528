"""Backups of a VM's disk and each VM's backup schedule (compute/services/backups.py).

A ``Backup`` is a copy of the disk kept in the hypervisor's backup storage (``backend_ref``
there), made, restored from and deleted only by operations. A ``BackupSchedule`` says when
beat takes a scheduled backup (daily or weekly, in a time window of the schedule's time zone)
and how many scheduled backups are kept (``retention``, at most the plan's ``max_backups``).
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from .choices import BackupFrequency, BackupKind, BackupState


class Backup(models.Model):
    vm = models.ForeignKey("compute.VirtualMachine", on_delete=models.CASCADE, related_name="backups")
    kind = models.CharField(max_length=16, choices=BackupKind.choices, default=BackupKind.MANUAL)
    state = models.CharField(max_length=16, choices=BackupState.choices, default=BackupState.CREATING)
    backend_ref = models.CharField(max_length=200, help_text="Its name in the hypervisor's backup storage.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    operation = models.ForeignKey(
        "compute.Operation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The last operation that acted on it (create, restore or delete).",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True, help_text="When the hypervisor finished the copy.")
    missing_since = models.DateTimeField(null=True, blank=True, help_text="Reconciliation no longer found it.")
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="When its delete was confirmed (metering).")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["vm", "state"])]

    def __str__(self):
        return f"{self.vm} backup {self.pk}"


class BackupSchedule(models.Model):
    vm = models.OneToOneField("compute.VirtualMachine", on_delete=models.CASCADE, related_name="backup_schedule")
    enabled = models.BooleanField(default=True)
    frequency = models.CharField(max_length=8, choices=BackupFrequency.choices, default=BackupFrequency.DAILY)
    weekday = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(6)], help_text="Weekly: 0 Monday … 6 Sunday."
    )
    window_start = models.TimeField(help_text="Start of the backup window, in the schedule's time zone.")
    window_minutes = models.PositiveSmallIntegerField(
        default=120, validators=[MinValueValidator(30), MaxValueValidator(720)]
    )
    timezone = models.CharField(max_length=64, default="Asia/Kolkata")
    retention = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)], help_text="Scheduled backups kept; the oldest go beyond it."
    )
    last_run_at = models.DateTimeField(null=True, blank=True, help_text="When beat last started a backup.")
    last_skipped_at = models.DateTimeField(null=True, blank=True)
    last_skip_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(frequency="daily") | Q(weekday__isnull=False), name="backup_schedule_weekly_has_day"
            )
        ]

    def __str__(self):
        return f"{self.vm} backups ({self.frequency})"

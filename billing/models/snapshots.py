from django.db import models
from django.db.models import Q


class StorageRecord(models.Model):
    """A VM's stored copies (snapshots or backups) in one closed month, in GiB-hours (each
    copy's reported size times the hours it existed that month), priced per GiB-hour. Made once
    per VM and month (unique); charged like usage (``charge``) and invoiced on its own line.
    Price, SAC and GST rate are those in force when the month was metered. Each concrete
    record adds ``vm``, ``project`` and ``charge`` with its own related names."""

    plan = models.ForeignKey("compute.Plan", on_delete=models.PROTECT, related_name="+")
    period = models.DateField(help_text="First day of the (billing time zone) month.")
    gib_hours = models.DecimalField(max_digits=16, decimal_places=3)
    price_per_gib_hour = models.DecimalField(max_digits=12, decimal_places=4)
    sac_code = models.CharField(max_length=8)
    gst_rate = models.DecimalField(max_digits=5, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=6, help_text="Before GST.")

    class Meta:
        abstract = True
        ordering = ["period", "vm_id"]


class SnapshotStorageRecord(StorageRecord):
    vm = models.ForeignKey("compute.VirtualMachine", on_delete=models.PROTECT, related_name="snapshot_records")
    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="snapshot_records")
    charge = models.ForeignKey(
        "billing.UsageCharge", null=True, blank=True, on_delete=models.PROTECT, related_name="snapshot_records"
    )

    class Meta(StorageRecord.Meta):
        constraints = [models.UniqueConstraint(fields=["vm", "period"], name="snapshot_storage_unique_vm_period")]
        indexes = [models.Index(fields=["project"], condition=Q(charge__isnull=True), name="snapshot_uncharged")]

    def __str__(self):
        return f"{self.vm_id} {self.period:%Y-%m} {self.gib_hours} GiB-h of snapshots"


class BackupStorageRecord(StorageRecord):
    vm = models.ForeignKey("compute.VirtualMachine", on_delete=models.PROTECT, related_name="backup_records")
    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="backup_records")
    charge = models.ForeignKey(
        "billing.UsageCharge", null=True, blank=True, on_delete=models.PROTECT, related_name="backup_records"
    )

    class Meta(StorageRecord.Meta):
        constraints = [models.UniqueConstraint(fields=["vm", "period"], name="backup_storage_unique_vm_period")]
        indexes = [models.Index(fields=["project"], condition=Q(charge__isnull=True), name="backup_uncharged")]

    def __str__(self):
        return f"{self.vm_id} {self.period:%Y-%m} {self.gib_hours} GiB-h of backups"

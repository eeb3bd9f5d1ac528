from django.db import models
from django.db.models import Q

from ..choices import MeterStatus, Regime


class MeterCursor(models.Model):
    """How far a VM's timeline has been metered: every hour slot before
    ``metered_until`` is done, and ``status`` is the confirmed status in force
    at that instant. ``closed`` once the VM is deleted."""

    vm = models.OneToOneField(
        "compute.VirtualMachine", on_delete=models.PROTECT, primary_key=True, related_name="meter_cursor"
    )
    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="+")
    metered_until = models.DateTimeField()
    status = models.CharField(max_length=16, choices=MeterStatus.choices, blank=True, default=MeterStatus.NONE)
    closed = models.BooleanField(default=False)
    plan = models.ForeignKey(
        "compute.Plan", null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="In force then."
    )

    class Meta:
        indexes = [
            models.Index(fields=["metered_until"], condition=Q(closed=False), name="metercursor_open"),
            models.Index(fields=["project"], condition=Q(closed=False), name="metercursor_open_project"),
        ]

    def __str__(self):
        return f"{self.vm_id} metered until {self.metered_until:%Y-%m-%d %H:%M}"


class UsageRecord(models.Model):
    """One VM's usage on one plan in one hour slot, prorated by the second. Unique per VM,
    slot, plan and item (an hour with a resize has one per plan; each additional IP its own
    item), so metering the same hour again inserts nothing.

    Price, SAC and GST rate are those in force when the hour was metered."""

    vm = models.ForeignKey("compute.VirtualMachine", on_delete=models.PROTECT, related_name="usage_records")
    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="usage_records")
    plan = models.ForeignKey("compute.Plan", on_delete=models.PROTECT, related_name="+")
    item = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text='"": the server; "ip:<holding id>:<address>": an additional IP, seconds held in running_seconds.',
    )
    hour_start = models.DateTimeField()
    running_seconds = models.PositiveIntegerField(default=0)
    stopped_seconds = models.PositiveIntegerField(default=0)
    price_running = models.DecimalField(max_digits=12, decimal_places=4)
    price_stopped = models.DecimalField(max_digits=12, decimal_places=4)
    sac_code = models.CharField(max_length=8)
    gst_rate = models.DecimalField(max_digits=5, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=6, help_text="Before GST; lines round from seconds.")
    charge = models.ForeignKey(
        "billing.UsageCharge", null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )

    class Meta:
        ordering = ["hour_start", "vm_id"]
        constraints = [
            models.UniqueConstraint(fields=["vm", "hour_start", "plan", "item"], name="usage_unique_vm_hour_plan_item")
        ]
        indexes = [
            models.Index(fields=["project", "hour_start"]),
            models.Index(fields=["project"], condition=Q(charge__isnull=True), name="usage_uncharged"),
        ]

    def __str__(self):
        return f"{self.vm_id} {self.hour_start:%Y-%m-%d %H:%M}"


class UsageCharge(models.Model):
    """One debit of metered usage: a project's uncharged records of one month
    at one run of the charge job. Invoicing collects the uninvoiced charges."""

    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="usage_charges")
    period = models.DateField(help_text="First day of the (billing time zone) month of its hours.")
    hour_from = models.DateTimeField()
    hour_to = models.DateTimeField(help_text="End of the last hour slot charged.")
    regime = models.CharField(max_length=16, choices=Regime.choices)
    taxable = models.DecimalField(max_digits=14, decimal_places=2)
    tax = models.DecimalField(max_digits=14, decimal_places=2)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    entry = models.OneToOneField(
        "billing.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="usage_charge",
        help_text="None when the usage came to 0.00 (free plan, a few seconds).",
    )
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="usage_charges"
    )
    registration = models.ForeignKey(
        "billing.SupplierRegistration",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The supplier registration of its VMs' hypervisors; blank: the principal one.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-hour_to", "-id"]
        indexes = [models.Index(fields=["project", "period"], condition=Q(invoice__isnull=True), name="charge_open")]

    def __str__(self):
        return f"{self.project_id} {self.period:%Y-%m} {self.total}"

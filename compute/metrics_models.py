"""VM metrics, stored compactly: one row per VM per sample with every metric as a column.

Three tiers, each keyed by (vm, at) with no surrogate id: raw samples (every
``METRICS_INTERVAL_SECONDS``, kept ``METRICS_RAW_HOURS``), 5-minute rollups (kept
``METRICS_5M_DAYS``) and hourly rollups (kept ``METRICS_1H_DAYS``). Values are
single-precision ``real`` (4 bytes; plenty for a graph); a value the hypervisor did
not report is NULL, and a round the hypervisor did not answer has no row (a gap,
never zeros). Exact byte counts for billing live in ``VMTransfer``.
"""

from django.conf import settings
from django.db import models

from .choices import AlertKind, AlertState


class RealField(models.FloatField):
    """A 4-byte float (PostgreSQL ``real``; SQLite stores every float alike)."""

    def db_type(self, connection):
        return "real"


class MetricValues(models.Model):
    """The columns every tier shares. Rates per second; network in bits, disk in bytes."""

    cpu_pct = RealField(null=True)  # of all the VM's vCPUs, 0..100
    mem_used = RealField(null=True)  # bytes
    mem_total = RealField(null=True)  # bytes
    disk_read_bps = RealField(null=True)  # bytes/s
    disk_write_bps = RealField(null=True)
    disk_read_iops = RealField(null=True)
    disk_write_iops = RealField(null=True)
    net_rx_bps = RealField(null=True)  # bits/s, into the VM
    net_tx_bps = RealField(null=True)  # bits/s, out of the VM

    class Meta:
        abstract = True


class VMMetricSample(MetricValues):
    """One collection round's reading of one VM."""

    pk = models.CompositePrimaryKey("vm_id", "at")
    vm = models.ForeignKey("compute.VirtualMachine", on_delete=models.CASCADE, related_name="+", db_index=False)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["at"], name="vmmetricsample_at")]


class VMMetricRollup(MetricValues):
    """Averages of one VM over one ``step`` (300 or 3600 s) starting at ``at``; ``cpu_max`` the
    busiest sample in it, ``samples`` how many readings it summarises."""

    pk = models.CompositePrimaryKey("vm_id", "step", "at")
    vm = models.ForeignKey("compute.VirtualMachine", on_delete=models.CASCADE, related_name="+", db_index=False)
    step = models.PositiveIntegerField()
    at = models.DateTimeField()
    cpu_max = RealField(null=True)
    samples = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["step", "at"], name="vmmetricrollup_step_at")]


class VMMetricCursor(models.Model):
    """The last counters read from a VM, to turn the next reading into rates."""

    vm = models.OneToOneField("compute.VirtualMachine", on_delete=models.CASCADE, primary_key=True, related_name="+")
    at = models.FloatField(help_text="Unix time of the reading.")
    counters = models.JSONField(default=dict)


class VMTransfer(models.Model):
    """Exact bytes a VM moved in one month (of ``settings.TIME_ZONE``, like billing's months)."""

    vm = models.ForeignKey("compute.VirtualMachine", on_delete=models.CASCADE, related_name="transfers")
    month = models.DateField(help_text="First day of the month.")
    rx_bytes = models.BigIntegerField(default=0)
    tx_bytes = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["vm", "month"], name="vmtransfer_unique_month")]

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes


class VMAlertRule(models.Model):
    """A user's threshold on one VM; ``state`` moves ok ⇄ firing, each move an ``VMAlertEvent``
    and an email."""

    vm = models.ForeignKey("compute.VirtualMachine", on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    threshold = models.PositiveSmallIntegerField(help_text="Percent (CPU, or share of the plan's transfer).")
    duration_minutes = models.PositiveSmallIntegerField(default=10, help_text="CPU only: how long above.")
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OK)
    changed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["vm_id", "kind", "threshold"]

    def __str__(self):
        return f"{self.get_kind_display()} > {self.threshold}%"


class VMAlertEvent(models.Model):
    rule = models.ForeignKey(VMAlertRule, on_delete=models.CASCADE, related_name="events")
    state = models.CharField(max_length=16, choices=AlertState.choices)
    value = models.FloatField(help_text="The measured percentage.")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]

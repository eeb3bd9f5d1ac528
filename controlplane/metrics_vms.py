"""Per-VM series for /metrics (docs/MONITORING.md: "Prometheus").

Each VM's latest sample (within two collection intervals) as gauges labelled
``vm``, ``vm_id``, ``project`` and ``hypervisor``, plus this month's transfer.
Cardinality is bounded: at most ``METRICS_PROMETHEUS_MAX_VMS`` VMs (the oldest
live ones by id, a stable set across scrapes), 9 series each; the count of VMs
left out is ``controlplane_vm_series_omitted``. 0 turns the per-VM series off.
"""

from datetime import timedelta

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from compute.choices import VM_LIVE_STATUSES
from compute.models import VirtualMachine, VMMetricSample, VMTransfer
from compute.services.metrics import interval_seconds, month_of

PREFIX = "controlplane_vm"
LABELS = ["vm", "vm_id", "project", "hypervisor"]
GAUGES = (  # (column, name, help)
    ("cpu_pct", "cpu_percent", "CPU use, percent of the VM's vCPUs."),
    ("mem_used", "memory_used_bytes", "Memory in use."),
    ("disk_read_bps", "disk_read_bytes_per_second", "Disk reads."),
    ("disk_write_bps", "disk_write_bytes_per_second", "Disk writes."),
    ("disk_read_iops", "disk_read_operations_per_second", "Disk read operations."),
    ("disk_write_iops", "disk_write_operations_per_second", "Disk write operations."),
    ("net_rx_bps", "network_receive_bits_per_second", "Network traffic into the VM."),
    ("net_tx_bps", "network_transmit_bits_per_second", "Network traffic out of the VM."),
)


def vm_series(now):
    limit = settings.VM_METRICS["PROMETHEUS_MAX_VMS"]
    live = VirtualMachine.objects.filter(status__in=VM_LIVE_STATUSES)
    omitted = GaugeMetricFamily(f"{PREFIX}_series_omitted", "Live VMs left out of the per-VM series (the limit).")
    families = [GaugeMetricFamily(f"{PREFIX}_{name}", text, labels=LABELS) for _, name, text in GAUGES]
    transfer = GaugeMetricFamily(
        f"{PREFIX}_transfer_month_bytes", "Bytes in + out this month (billing time zone).", labels=LABELS
    )
    vms = list(live.order_by("pk").values_list("pk", "name", "project__slug", "hypervisor__name")[:limit])
    omitted.add_metric([], live.count() - len(vms) if len(vms) == limit else 0)
    labels = {pk: [name, str(pk), project, hypervisor] for pk, name, project, hypervisor in vms}
    if not labels:
        return [omitted]
    since = now - timedelta(seconds=2 * interval_seconds())
    latest = {}
    columns = [column for column, _, _ in GAUGES]
    rows = VMMetricSample.objects.filter(vm_id__in=labels, at__gte=since).order_by("vm_id", "-at")
    for vm_id, *values in rows.values_list("vm_id", *columns):
        latest.setdefault(vm_id, values)
    for vm_id, values in latest.items():
        for family, value in zip(families, values, strict=True):
            if value is not None:
                family.add_metric(labels[vm_id], value)
    month = VMTransfer.objects.filter(vm_id__in=labels, month=month_of(now)).values_list(
        "vm_id", "rx_bytes", "tx_bytes"
    )
    for vm_id, rx, tx in month:
        transfer.add_metric(labels[vm_id], rx + tx)
    return [omitted, *families, transfer]

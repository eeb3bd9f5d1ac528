"""Per-VM series for /metrics (docs/MONITORING.md: "Prometheus"); the reads are
``compute.selectors_metrics.vm_latest_samples``.

Each VM's latest sample (within two collection intervals) as gauges labelled
``vm``, ``vm_id``, ``project`` and ``hypervisor``, plus this month's transfer.
Cardinality is bounded: at most ``METRICS_PROMETHEUS_MAX_VMS`` VMs (the oldest
live ones by id, a stable set across scrapes), 9 series each; the count of VMs
left out is ``controlplane_vm_series_omitted``. 0 turns the per-VM series off.
"""

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from compute.selectors_metrics import vm_latest_samples

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
    latest = vm_latest_samples(
        columns=[column for column, _, _ in GAUGES], limit=settings.VM_METRICS["PROMETHEUS_MAX_VMS"], now=now
    )
    omitted = GaugeMetricFamily(f"{PREFIX}_series_omitted", "Live VMs left out of the per-VM series (the limit).")
    omitted.add_metric([], latest.omitted)
    families = [GaugeMetricFamily(f"{PREFIX}_{name}", text, labels=LABELS) for _, name, text in GAUGES]
    transfer = GaugeMetricFamily(
        f"{PREFIX}_transfer_month_bytes", "Bytes in + out this month (billing time zone).", labels=LABELS
    )

    def labels(vm_id: int) -> list[str]:
        name, project, hypervisor = latest.labels[vm_id]
        return [name, str(vm_id), project, hypervisor]

    for vm_id, values in latest.values.items():
        for family, value in zip(families, values, strict=True):
            if value is not None:
                family.add_metric(labels(vm_id), value)
    for vm_id, total in latest.transfer.items():
        transfer.add_metric(labels(vm_id), total)
    return [omitted, *families, transfer] if latest.labels else [omitted]

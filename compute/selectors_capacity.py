"""How full each hypervisor is: allocated (plans of its live VMs) against the capacity an
operator declared, what the VMs actually use (their latest samples), and how that use went
over the last days (hourly rollups)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from .choices import VM_LIVE_STATUSES, PowerState, RequestStatus
from .models import Hypervisor, VirtualMachine, VMMetricRollup, VMMetricSample
from .services.metrics import interval_seconds

RESOURCES = (("vcpus", "vCPU"), ("memory_mib", "memory (MiB)"), ("disk_gib", "disk (GiB)"))


@dataclass
class Capacity:
    hypervisor: Hypervisor
    vms: int = 0
    running: int = 0
    pending_requests: int = 0
    allocated: dict[str, int] = field(default_factory=dict)  # vcpus, memory_mib, disk_gib
    capacity: dict[str, int] = field(default_factory=dict)  # 0: not limited
    used_vcpus: float | None = None  # busy vCPUs by the latest samples
    used_memory_mib: float | None = None

    def percent(self, resource: str) -> float | None:
        limit = self.capacity.get(resource) or 0
        return round(self.allocated.get(resource, 0) / limit * 100, 1) if limit else None

    def free(self, resource: str) -> int | None:
        limit = self.capacity.get(resource) or 0
        return max(0, limit - self.allocated.get(resource, 0)) if limit else None

    @property
    def warnings(self) -> list[str]:
        threshold = settings.VM_METRICS["CAPACITY_WARN_PERCENT"]
        return [
            f"{label} {self.percent(name)}% allocated"
            for name, label in RESOURCES
            if self.percent(name) is not None and self.percent(name) >= threshold
        ]


def allocated_on(hypervisor_ids: list[int]) -> dict[int, dict[str, int]]:
    rows = (
        VirtualMachine.objects.filter(hypervisor_id__in=hypervisor_ids, status__in=VM_LIVE_STATUSES, quota_held=True)
        .values("hypervisor_id")
        .annotate(vcpus=Sum("plan__vcpus"), memory_mib=Sum("plan__memory_mib"), disk_gib=Sum("plan__disk_gib"))
    )
    return {row.pop("hypervisor_id"): {k: v or 0 for k, v in row.items()} for row in rows}


def hypervisor_capacity_list() -> list[Capacity]:
    """Every hypervisor, in a fixed number of queries."""
    hypervisors = list(Hypervisor.objects.all())
    ids = [hv.pk for hv in hypervisors]
    allocated = allocated_on(ids)
    counts = {
        row["hypervisor_id"]: row
        for row in VirtualMachine.objects.filter(hypervisor_id__in=ids, status__in=VM_LIVE_STATUSES)
        .values("hypervisor_id")
        .annotate(vms=Count("id"), running=Count("id", filter=Q(power_state=PowerState.RUNNING)))
    }
    pending = dict(
        Hypervisor.objects.filter(pk__in=ids)
        .annotate(n=Count("vmrequest", filter=Q(vmrequest__status=RequestStatus.PENDING)))
        .values_list("pk", "n")
    )
    since = timezone.now() - timedelta(seconds=2 * interval_seconds())
    used = {
        row["vm__hypervisor_id"]: row
        for row in VMMetricSample.objects.filter(at__gte=since, vm__hypervisor_id__in=ids)
        .values("vm__hypervisor_id")
        .annotate(cpu=Sum(F("cpu_pct") * F("vm__plan__vcpus") / 100.0), mem=Sum("mem_used"), n=Count("vm_id"))
    }
    out = []
    for hv in hypervisors:
        sample = used.get(hv.pk)
        out.append(
            Capacity(
                hypervisor=hv,
                vms=counts.get(hv.pk, {}).get("vms", 0),
                running=counts.get(hv.pk, {}).get("running", 0),
                pending_requests=pending.get(hv.pk, 0),
                allocated=allocated.get(hv.pk, {"vcpus": 0, "memory_mib": 0, "disk_gib": 0}),
                capacity={name: getattr(hv, f"capacity_{name}") for name, _ in RESOURCES},
                used_vcpus=round(sample["cpu"], 2) if sample and sample["cpu"] is not None else None,
                used_memory_mib=round(sample["mem"] / 2**20) if sample and sample["mem"] is not None else None,
            )
        )
    return out


@dataclass
class TrendDay:
    day: date  # in settings.TIME_ZONE
    peak_vcpus: float | None  # busiest hour: busy vCPUs summed over the hypervisor's VMs
    peak_memory_mib: int | None  # busiest hour: memory in use summed over them


def hypervisor_usage_trend(*, days: int = 7, now: datetime | None = None) -> dict[int, list[TrendDay]]:
    """Per hypervisor, the last ``days`` days (oldest first) of what its VMs used at the busiest
    hour of each day, from the hourly rollups (kept a year): one query. A day without rollups
    shows as None (no data), never as 0."""
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now, tz).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    hours = (
        VMMetricRollup.objects.filter(step=3600, at__gte=start)
        .values("vm__hypervisor_id", "at")
        .annotate(cpu=Sum(F("cpu_pct") * F("vm__plan__vcpus") / 100.0), mem=Sum("mem_used"))
    )
    peaks: dict[int, dict[date, list[float | None]]] = {}
    for row in hours:
        day = timezone.localtime(row["at"], tz).date()
        peak = peaks.setdefault(row["vm__hypervisor_id"], {}).setdefault(day, [None, None])
        if row["cpu"] is not None:
            peak[0] = max(peak[0] or 0.0, row["cpu"])
        if row["mem"] is not None:
            peak[1] = max(peak[1] or 0.0, row["mem"])
    out = {}
    for hypervisor_id, by_day in peaks.items():
        out[hypervisor_id] = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            cpu, mem = by_day.get(day, (None, None))
            out[hypervisor_id].append(
                TrendDay(
                    day=day,
                    peak_vcpus=round(cpu, 2) if cpu is not None else None,
                    peak_memory_mib=round(mem / 2**20) if mem is not None else None,
                )
            )
    return out

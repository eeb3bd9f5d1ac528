"""Project quotas: reserved at request time, released when the resources go away.

Every change happens under a row lock on the project's quota row, so two
concurrent requests cannot both take the last slot.
"""

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from compute.models import Plan, ProjectQuota
from compute.selectors import quota_excess
from controlplane.errors import Conflict


def _locked_quota(project) -> ProjectQuota:
    ProjectQuota.objects.get_or_create(project=project)
    return ProjectQuota.objects.select_for_update(no_key=True, of=("self",)).get(project=project)


def quota_check(*, project, plan: Plan, count: int = 1, quota: ProjectQuota | None = None) -> None:
    """``Conflict`` (quota_exceeded) when ``count`` more VMs of ``plan`` do not fit ``quota``
    (default: the project's, read without a lock: a preview; ``quota_reserve`` decides)."""
    if quota is None:
        quota = ProjectQuota.objects.filter(project=project).first() or ProjectQuota(project=project)
    excess = quota_excess(quota=quota, plan=plan, count=count)
    if excess is not None:
        label, wanted, limit = excess
        raise Conflict(
            f"Quota exceeded: project {project.name} may use {limit} {label} and this would make {wanted}. "
            "Delete a VM or ask an operator to raise the quota.",
            code="quota_exceeded",
        )


@transaction.atomic
def quota_reserve(*, project, plan: Plan, count: int = 1) -> ProjectQuota:
    """Take ``count`` VMs of ``plan`` (a batch takes all of them or none)."""
    quota = _locked_quota(project)
    quota_check(project=project, plan=plan, count=count, quota=quota)
    ProjectQuota.objects.filter(pk=quota.pk).update(
        used_vms=F("used_vms") + count,
        used_vcpus=F("used_vcpus") + count * plan.vcpus,
        used_memory_mib=F("used_memory_mib") + count * plan.memory_mib,
        used_disk_gib=F("used_disk_gib") + count * plan.disk_gib,
    )
    quota.refresh_from_db()
    return quota


@transaction.atomic
def quota_release(*, project, plan: Plan, count: int = 1) -> None:
    quota = _locked_quota(project)
    ProjectQuota.objects.filter(pk=quota.pk).update(
        used_vms=Greatest(F("used_vms") - count, 0),
        used_vcpus=Greatest(F("used_vcpus") - count * plan.vcpus, 0),
        used_memory_mib=Greatest(F("used_memory_mib") - count * plan.memory_mib, 0),
        used_disk_gib=Greatest(F("used_disk_gib") - count * plan.disk_gib, 0),
    )


@transaction.atomic
def quota_adjust(*, project, vcpus: int = 0, memory_mib: int = 0, disk_gib: int = 0) -> None:
    """Take (positive) or give back (negative) resources without changing the VM count (a resize).
    Taking more than the quota allows is a Conflict; nothing is written then."""
    quota = _locked_quota(project)
    checks = [
        ("vCPUs", vcpus, quota.used_vcpus, quota.max_vcpus),
        ("MiB of memory", memory_mib, quota.used_memory_mib, quota.max_memory_mib),
        ("GiB of disk", disk_gib, quota.used_disk_gib, quota.max_disk_gib),
    ]
    for label, delta, used, limit in checks:
        if delta > 0 and used + delta > limit:
            raise Conflict(
                f"Quota exceeded: project {project.name} may use {limit} {label} and this would make "
                f"{used + delta}. Ask an operator to raise the quota.",
                code="quota_exceeded",
            )
    ProjectQuota.objects.filter(pk=quota.pk).update(
        used_vcpus=Greatest(F("used_vcpus") + vcpus, 0),
        used_memory_mib=Greatest(F("used_memory_mib") + memory_mib, 0),
        used_disk_gib=Greatest(F("used_disk_gib") + disk_gib, 0),
    )

"""Portal: a VM's Metrics tab (charts, this month's transfer, alert rules and their history).

The charts are drawn in the browser (static/portal/metrics.js with the vendored
uPlot) from /api/v1/virtual-machines/{id}/metrics/, refreshed every collection
interval while the tab is open and visible. Rule changes go through
compute.services.alerts; members and above may change them, viewers look.
"""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.choices import Role, role_at_least
from accounts.views.common import with_project
from controlplane.errors import InvalidInput, NotFound

from . import selectors
from .choices import AlertKind
from .models import VMAlertEvent, VMAlertRule
from .selectors_metrics import vm_transfer_month
from .services import alerts

RANGES = (("1h", "Last hour"), ("1d", "Last day"), ("7d", "Last week"), ("30d", "Last month"))


def _number(value: str, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"Enter a whole number for the {field}.") from None


@with_project()
def vm_metrics(request, project, pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    rules = list(VMAlertRule.objects.filter(vm=vm))
    context = {
        "project": project,
        "vm": vm,
        "ranges": RANGES,
        "interval": settings.VM_METRICS["INTERVAL_SECONDS"],
        "tz": settings.TIME_ZONE,
        "transfer": vm_transfer_month(vm=vm),
        "rules": rules,
        "events": VMAlertEvent.objects.filter(rule__vm=vm).select_related("rule")[:50],
        "kinds": AlertKind.choices,
        "can_edit": role_at_least(project.role, Role.MEMBER),
    }
    return render(request, "compute/vm_metrics.html", context)


@require_POST
@with_project(Role.MEMBER)
def alert_rule_add(request, project, pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    alerts.alert_rule_create(
        vm=vm,
        user=request.user,
        kind=request.POST.get("kind", ""),
        threshold=_number(request.POST.get("threshold"), "threshold"),
        duration_minutes=_number(request.POST.get("duration_minutes") or "0", "duration"),
    )
    messages.success(request, "Alert rule added; you get an email when it fires and when it recovers.")
    return redirect("compute:vm_metrics", slug=project.slug, pk=vm.pk)


@require_POST
@with_project(Role.MEMBER)
def alert_rule_delete(request, project, pk, rule_pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    rule = VMAlertRule.objects.filter(vm=vm, pk=rule_pk).select_related("vm").first()
    if rule is None:
        raise NotFound("No such alert rule.")
    alerts.alert_rule_delete(rule=rule, user=request.user)
    messages.success(request, "Alert rule removed.")
    return redirect("compute:vm_metrics", slug=project.slug, pk=vm.pk)

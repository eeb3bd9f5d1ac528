"""Per-VM alert rules: create, delete, evaluate (beat, every collection interval).

A CPU rule fires when every sample of the last ``duration_minutes`` — and the
last one before that window, which proves the condition started at least that
long ago without a gap — is above the threshold (``duration_minutes`` 0: the
latest sample). It recovers when the latest sample is at or below it. A
transfer rule fires when this month's transfer passes ``threshold`` % of the
plan's included transfer and recovers when it no longer does (a new month).
Missing rounds inside the window keep a rule from firing; no recent data
changes nothing. Each change is a ``VMAlertEvent``, an audit event and an
email to the rule's author, sent after commit.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

import audit
from controlplane.errors import Conflict, InvalidInput

from ..choices import VM_LIVE_STATUSES, AlertKind, AlertState
from ..models import VirtualMachine, VMAlertEvent, VMAlertRule, VMMetricSample, VMTransfer
from .metrics import interval_seconds, month_of

logger = logging.getLogger(__name__)
GB = 10**9
MAX_RULES_PER_VM = 20


@transaction.atomic
def alert_rule_create(
    *, vm: VirtualMachine, user, kind: str, threshold: int, duration_minutes: int = 10
) -> VMAlertRule:
    if kind not in AlertKind.values:
        raise InvalidInput("Choose CPU or transfer.", fields={"kind": ["Unknown kind."]})
    if not 1 <= threshold <= (100 if kind == AlertKind.CPU else 1000):
        raise InvalidInput("The threshold is a percentage (CPU: 1-100, transfer: 1-1000).", fields={"threshold": []})
    if not 0 <= duration_minutes <= 1440:
        raise InvalidInput("The duration is 0 to 1440 minutes.", fields={"duration_minutes": []})
    if kind == AlertKind.TRANSFER and not vm.plan.included_transfer_gb:
        raise Conflict(f"The {vm.plan} plan includes no transfer to compare with.", fields={"kind": []})
    if VMAlertRule.objects.filter(vm=vm).count() >= MAX_RULES_PER_VM:
        raise Conflict(f"A VM has at most {MAX_RULES_PER_VM} alert rules; delete one first.")
    rule = VMAlertRule.objects.create(
        vm=vm, kind=kind, threshold=threshold, duration_minutes=duration_minutes, created_by=user
    )
    audit.record(
        actor=user,
        action="alert.rule_created",
        target=vm,
        project=vm.project_id,
        details={"rule": rule.pk, "kind": kind, "threshold": threshold, "duration_minutes": duration_minutes},
    )
    return rule


@transaction.atomic
def alert_rule_delete(*, rule: VMAlertRule, user) -> None:
    audit.record(
        actor=user,
        action="alert.rule_deleted",
        target=rule.vm,
        project=rule.vm.project_id,
        details={"rule": rule.pk, "kind": rule.kind, "threshold": rule.threshold},
    )
    rule.delete()


def _cpu_value(rule: VMAlertRule, now: datetime) -> tuple[bool | None, float | None]:
    """(above?, the value shown) from the samples; None: not enough recent data to say."""
    recent = timedelta(seconds=2 * interval_seconds())
    window_start = now - timedelta(minutes=rule.duration_minutes)
    samples = VMMetricSample.objects.filter(vm_id=rule.vm_id, cpu_pct__isnull=False)
    latest = samples.filter(at__lte=now).order_by("-at").values_list("at", "cpu_pct").first()
    if latest is None or latest[0] < now - recent:
        return None, None
    if rule.state == AlertState.FIRING:
        return latest[1] > rule.threshold, latest[1]
    anchor = samples.filter(at__lte=window_start).order_by("-at").values_list("at", "cpu_pct").first()
    if anchor is None or anchor[0] < window_start - recent:
        return False, latest[1]
    window = [anchor, *samples.filter(at__gt=window_start, at__lte=now).order_by("at").values_list("at", "cpu_pct")]
    if any(later[0] - earlier[0] > recent for earlier, later in zip(window, window[1:], strict=False)):
        return False, latest[1]  # a gap: it was not seen above the whole time
    lowest = min(value for _, value in window)
    return lowest > rule.threshold, lowest


def _transfer_value(rule: VMAlertRule, now: datetime) -> tuple[bool | None, float | None]:
    included = rule.vm.plan.included_transfer_gb * GB
    if not included:
        return None, None
    row = VMTransfer.objects.filter(vm_id=rule.vm_id, month=month_of(now)).values_list("rx_bytes", "tx_bytes").first()
    percent = sum(row or (0, 0)) / included * 100
    return percent > rule.threshold, round(percent, 1)


def _notify(rule: VMAlertRule, state: str, value: float) -> None:
    to = rule.created_by.email if rule.created_by_id else rule.vm.owner.email
    vm = rule.vm
    what = f"{rule.get_kind_display().split(' above')[0]} above {rule.threshold}%"
    if state == AlertState.FIRING:
        subject = f"Alert: {vm.name} — {what}"
        body = f"{vm.name}: {what} (now {value}%).\n"
    else:
        subject = f"Recovered: {vm.name} — {what}"
        body = f"{vm.name} is back at or below the threshold (now {value}%).\n"
    body += f"\n{settings.SITE_URL}/projects/{vm.project.slug}/vms/{vm.pk}/metrics/\n"

    def send():
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
        except Exception:
            logger.warning("could not send the alert mail to %s", to, exc_info=True)

    transaction.on_commit(send)


@transaction.atomic
def _move(rule: VMAlertRule, state: str, value: float, now: datetime) -> bool:
    """Guarded: only the evaluation that moves the rule from its current state records it."""
    moved = VMAlertRule.objects.filter(pk=rule.pk, state=rule.state).update(state=state, changed_at=now)
    if not moved:
        return False
    VMAlertEvent.objects.create(rule=rule, state=state, value=value, at=now)
    audit.record(
        actor="system",
        action="alert.fired" if state == AlertState.FIRING else "alert.recovered",
        target=rule.vm,
        project=rule.vm.project_id,
        details={"rule": rule.pk, "kind": rule.kind, "threshold": rule.threshold, "value": value},
    )
    _notify(rule, state, value)
    return True


def alerts_evaluate(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    fired = recovered = 0
    rules = VMAlertRule.objects.filter(vm__status__in=VM_LIVE_STATUSES).select_related(
        "vm__plan", "vm__project", "vm__owner", "created_by"
    )
    for rule in rules:
        above, value = (_cpu_value if rule.kind == AlertKind.CPU else _transfer_value)(rule, now)
        if above is None:
            continue
        if above and rule.state == AlertState.OK:
            fired += _move(rule, AlertState.FIRING, value, now)
        elif not above and rule.state == AlertState.FIRING:
            recovered += _move(rule, AlertState.OK, value, now)
    return {"rules": len(rules), "fired": fired, "recovered": recovered}

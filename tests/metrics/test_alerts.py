"""Alert rules: CPU above X % for N minutes, transfer above Y % of the plan; fire, recover, email, history."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from compute.models import VMAlertEvent, VMAlertRule, VMMetricSample, VMTransfer
from compute.services.alerts import alert_rule_create, alerts_evaluate
from compute.services.metrics import month_of
from controlplane.errors import Conflict, InvalidInput

NOW = timezone.now().replace(microsecond=0)


def cpu_minutes(vm, values, end=NOW):
    """One sample per minute ending at ``end``: ``values`` oldest first (None: a missing round)."""
    VMMetricSample.objects.bulk_create(
        VMMetricSample(vm=vm, at=end - timedelta(minutes=len(values) - 1 - i), cpu_pct=v)
        for i, v in enumerate(values)
        if v is not None
    )


@pytest.fixture
def rule(sim_vm, user):
    vm = sim_vm("web")
    return alert_rule_create(vm=vm, user=user, kind="cpu", threshold=90, duration_minutes=10)


@pytest.mark.django_db
def test_cpu_fires_after_n_minutes_above_and_recovers_with_emails(rule, django_capture_on_commit_callbacks):
    cpu_minutes(rule.vm, [95] * 6)  # 5 minutes above: not yet
    assert alerts_evaluate(now=NOW)["fired"] == 0
    VMMetricSample.objects.all().delete()
    cpu_minutes(rule.vm, [50] + [95] * 11)  # 11 minutes above

    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_evaluate(now=NOW) == {"rules": 1, "fired": 1, "recovered": 0}
        assert alerts_evaluate(now=NOW)["fired"] == 0  # already firing: no second email
    rule.refresh_from_db()
    assert rule.state == "firing"
    assert [m.subject for m in mail.outbox] == ["Alert: web — CPU above 90%"]
    assert "now 95.0%" in mail.outbox[0].body and f"/vms/{rule.vm_id}/metrics/" in mail.outbox[0].body

    later = NOW + timedelta(minutes=1)
    VMMetricSample.objects.create(vm=rule.vm, at=later, cpu_pct=20)
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_evaluate(now=later)["recovered"] == 1
    assert mail.outbox[-1].subject == "Recovered: web — CPU above 90%"
    assert [e.state for e in VMAlertEvent.objects.order_by("at")] == ["firing", "ok"]
    assert AuditEvent.objects.filter(action__in=["alert.fired", "alert.recovered"]).count() == 2


@pytest.mark.django_db
def test_a_gap_in_the_window_or_stale_data_never_fires(rule):
    cpu_minutes(rule.vm, [95] * 4 + [None] * 4 + [95] * 4)  # above, but with 4 missing rounds
    cpu_minutes(rule.vm, [95], end=NOW - timedelta(minutes=12))
    assert alerts_evaluate(now=NOW)["fired"] == 0
    assert alerts_evaluate(now=NOW + timedelta(minutes=30))["fired"] == 0  # nothing recent: no change


@pytest.mark.django_db
def test_transfer_fires_past_the_share_of_the_plan(sim_vm, user):
    vm = sim_vm("web")
    with pytest.raises(Conflict, match="includes no transfer"):
        alert_rule_create(vm=vm, user=user, kind="transfer", threshold=80)
    vm.plan.included_transfer_gb = 100
    vm.plan.save()
    rule = alert_rule_create(vm=vm, user=user, kind="transfer", threshold=80)
    transfer = VMTransfer.objects.create(vm=vm, month=month_of(NOW), rx_bytes=70 * 10**9, updated_at=NOW)
    assert alerts_evaluate(now=NOW)["fired"] == 0
    transfer.tx_bytes = 11 * 10**9
    transfer.save()
    assert alerts_evaluate(now=NOW)["fired"] == 1
    assert VMAlertEvent.objects.get().value == 81.0
    assert alerts_evaluate(now=NOW + timedelta(days=32))["recovered"] == 1  # a new month
    rule.refresh_from_db()
    assert rule.state == "ok"


@pytest.mark.parametrize(
    "kind,threshold,duration,message",
    [
        ("disk", 50, 1, "Choose CPU"),
        ("cpu", 0, 1, "percentage"),
        ("cpu", 101, 1, "percentage"),
        ("cpu", 50, 9999, "duration"),
    ],
)
@pytest.mark.django_db
def test_bad_rules_are_refused(sim_vm, user, kind, threshold, duration, message):
    with pytest.raises(InvalidInput, match=message):
        alert_rule_create(vm=sim_vm("web"), user=user, kind=kind, threshold=threshold, duration_minutes=duration)
    assert not VMAlertRule.objects.exists()

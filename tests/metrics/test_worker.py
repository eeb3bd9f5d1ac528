"""Collection and alerts through a real Celery worker (the session's live worker, real Redis).

Beat's tasks are sent by hand: ``collect_metrics_all`` on the control queue fans out
``collect_metrics`` to the simulator's queue, the worker reads the simulator and
writes samples; ``evaluate_metric_alerts`` fires, and after the load drops, recovers."""

import time

from audit.models import AuditEvent
from compute.models import VMAlertEvent, VMAlertRule, VMMetricSample
from compute.services.alerts import alert_rule_create
from controlplane.celery import app
from tests.fixtures.compute import wait_for


def collect_round(vm, expected):
    app.send_task("collect_metrics_all", queue="control")
    wait_for(lambda: VMMetricSample.objects.filter(vm=vm).count() >= expected, message=f"{expected} samples")


def evaluate_until(rule, state):
    def moved():
        app.send_task("evaluate_metric_alerts", queue="control")
        time.sleep(0.3)
        return VMAlertRule.objects.get(pk=rule.pk).state == state

    wait_for(moved, message=f"rule {state}")


def test_an_alert_fires_and_recovers_through_a_real_worker(live_worker, sim_vm, user):
    # Given a VM whose CPU the simulator pins at 95 %, and a rule "CPU above 80 %" (latest sample)
    vm = sim_vm("web")
    rule = alert_rule_create(vm=vm, user=user, kind="cpu", threshold=80, duration_minutes=0)
    sim_vm.store.set_load(vm.backend_id, 0.95)

    # When the worker collects a round and evaluates, the rule fires
    collect_round(vm, 1)
    assert VMMetricSample.objects.get(vm=vm).cpu_pct == 95.0
    evaluate_until(rule, "firing")

    # And when the load drops, the next round recovers it
    sim_vm.store.set_load(vm.backend_id, 0.10)
    time.sleep(1.1)  # samples are stored per second
    collect_round(vm, 2)
    evaluate_until(rule, "ok")
    assert list(VMAlertEvent.objects.filter(rule=rule).order_by("at").values_list("state", "value")) == [
        ("firing", 95.0),
        ("ok", 10.0),
    ]
    assert set(AuditEvent.objects.filter(action__startswith="alert.").values_list("action", flat=True)) == {
        "alert.rule_created",
        "alert.fired",
        "alert.recovered",
    }

"""A resize changes the hourly price at the instant the hypervisor confirmed it: metering
splits the hour there, and the invoice shows one line per plan and period."""

from decimal import Decimal

from billing import services
from billing.models import MeterCursor, UsageRecord
from billing.timeline import SlotUsage, plan_slot_usage
from compute.models import VirtualMachine, VMStatusEvent
from tests.fixtures.billing import HOUR, at, fund, set_profile
from tests.fixtures.factories import PlanFactory

D = Decimal
T0 = at("2025-05-01 04:30")  # 10:00 IST, a slot boundary
MINUTE = HOUR / 60


def test_plan_slot_usage_splits_the_hour_at_the_resize():
    events = [(T0, "active", 1), (T0 + 40 * MINUTE, "active", 2), (T0 + 90 * MINUTE, "stopped", None)]
    slots, status, plan = plan_slot_usage(start=T0, until=T0 + 2 * HOUR, status="", plan=1, events=events)
    assert slots == [
        (1, SlotUsage(T0, 2400, 0)),
        (2, SlotUsage(T0, 1200, 0)),
        (2, SlotUsage(T0 + HOUR, 1800, 1800)),
    ]
    assert (status, plan) == ("stopped", 2)


def test_plan_slot_usage_without_a_resize_is_slot_usage():
    events = [(T0 + 10 * MINUTE, "active", 1), (T0 + 70 * MINUTE, "stopped", 1)]
    slots, status, plan = plan_slot_usage(start=T0, until=T0 + 2 * HOUR, status="", plan=1, events=events)
    assert slots == [(1, SlotUsage(T0, 3000, 0)), (1, SlotUsage(T0 + HOUR, 600, 3000))]
    assert (status, plan) == ("stopped", 1)


def test_resized_vm_is_metered_and_invoiced_per_plan(project, supplier, vm_factory):
    # Given a VM on a 10.00/h plan, resized to a 40.00/h plan at 10:40 IST (confirmed instant)
    small = PlanFactory(price_hourly_running=D("10.0000"))
    large = PlanFactory(price_hourly_running=D("40.0000"))
    set_profile(project, "karnataka")
    fund(project, "1000")
    vm = vm_factory([], plan=small)
    VMStatusEvent.objects.create(vm=vm, status="active", power_state="running", at=T0, source="tests", plan=small)
    VirtualMachine.objects.filter(pk=vm.pk).update(plan=large)
    VMStatusEvent.objects.create(
        vm=vm, status="active", power_state="running", at=T0 + 40 * MINUTE, source="tests", plan=large
    )

    # When two hours are metered (in two runs: the cursor carries the plan across)
    services.usage_meter(until=T0 + HOUR)
    assert MeterCursor.objects.get(vm=vm).plan_id == large.pk
    services.usage_meter(until=T0 + 2 * HOUR)
    services.usage_charge_pending()

    # Then the first hour has one record per plan, priced each at its own rate
    records = list(
        UsageRecord.objects.order_by("hour_start", "amount").values_list(
            "hour_start", "plan_id", "running_seconds", "amount"
        )
    )
    assert records == [
        (T0, small.pk, 2400, D("6.666667")),
        (T0, large.pk, 1200, D("13.333333")),
        (T0 + HOUR, large.pk, 3600, D("40.000000")),
    ]

    # And the invoice has one line per plan: 0.6667 h at 10.00 and 1.3333 h at 40.00
    invoice = services.invoice_issue(project=project, actor="system:tests", at=T0 + 3 * HOUR)
    lines = sorted((line.rate, line.quantity, line.taxable) for line in invoice.lines.all())
    assert lines == [(D("10.0000"), D("0.6667"), D("6.67")), (D("40.0000"), D("1.3333"), D("53.33"))]
    assert invoice.taxable_total == D("60.00")

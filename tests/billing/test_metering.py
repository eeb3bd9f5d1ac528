"""Metering from the confirmed timeline, and charging the wallet for it."""

from decimal import Decimal

import pytest

from billing import selectors, services
from billing.models import LedgerEntry, MeterCursor, UsageCharge, UsageRecord, Wallet
from billing.timeline import SlotUsage, slot_usage
from tests.fixtures.billing import HOUR, at, fund, set_profile

D = Decimal
T0 = at("2025-05-01 04:30")  # 10:00 IST: a billing slot boundary


class TestTimeline:
    def test_prorated_by_the_second_across_slots(self):
        events = [
            (T0 + 600 * HOUR / 3600, "active"),  # 10:10
            (T0 + HOUR * 2 + HOUR / 6, "stopped"),  # 12:10
            (T0 + HOUR * 3, "deleted"),
        ]
        slots, final = slot_usage(start=T0, until=T0 + 5 * HOUR, status="building", events=events)
        assert slots == [
            SlotUsage(T0, 3000, 0),
            SlotUsage(T0 + HOUR, 3600, 0),
            SlotUsage(T0 + 2 * HOUR, 600, 3000),
        ]
        assert final == "deleted"

    def test_building_error_and_deleted_are_never_charged(self):
        events = [(T0 + HOUR, "error"), (T0 + 2 * HOUR, "active"), (T0 + 2.5 * HOUR, "error")]
        slots, final = slot_usage(start=T0, until=T0 + 4 * HOUR, status="building", events=events)
        assert slots == [SlotUsage(T0 + 2 * HOUR, 1800, 0)]
        assert final == "error"

    def test_status_in_force_at_the_start_carries_on(self):
        slots, final = slot_usage(start=T0, until=T0 + 2 * HOUR, status="stopped", events=[])
        assert slots == [SlotUsage(T0, 0, 3600), SlotUsage(T0 + HOUR, 0, 3600)]
        assert final == "stopped"

    def test_sub_second_flapping_never_exceeds_the_hour(self):
        from datetime import timedelta

        half = timedelta(seconds=1800, microseconds=500_000)
        events = [(T0 + half, "stopped")]
        slots, _ = slot_usage(start=T0, until=T0 + HOUR, status="active", events=events)
        assert slots[0].running_seconds + slots[0].stopped_seconds == 3600


@pytest.fixture
def timeline_vm(vm_factory):
    """Create confirmed 10:10 IST, stopped 12:10, deleted 13:00 (plan: 1.50/h running, 0.25/h stopped)."""
    return vm_factory(
        [
            (T0, "building"),
            (T0 + HOUR / 6, "active"),
            (T0 + 2 * HOUR + HOUR / 6, "stopped"),
            (T0 + 3 * HOUR, "deleted"),
        ]
    )


def test_metering_writes_one_record_per_vm_and_hour(timeline_vm):
    result = services.usage_meter(until=T0 + 5 * HOUR)
    records = list(
        UsageRecord.objects.order_by("hour_start").values_list("hour_start", "running_seconds", "stopped_seconds")
    )
    assert records == [(T0, 3000, 0), (T0 + HOUR, 3600, 0), (T0 + 2 * HOUR, 600, 3000)]
    assert result.records == 3
    cursor = MeterCursor.objects.get(vm=timeline_vm)
    assert cursor.closed and cursor.status == "deleted"
    assert UsageRecord.objects.get(hour_start=T0).amount == D("1.250000")


def test_rerunning_the_meter_and_the_charge_charges_nothing_more(project, timeline_vm):
    set_profile(project, "karnataka")
    services.usage_meter(until=T0 + 5 * HOUR)
    services.usage_charge_pending()
    balance = Wallet.objects.get(project=project).balance
    # taxable: (3000+3600+600)s * 1.50/h + 3000s * 0.25/h = 3.00 + 0.2083.. -> 3.21; IGST 18% 0.58
    assert balance == D("-3.79")

    # When everything runs again, even with the cursor rewound (an operator's reset)
    services.usage_meter(until=T0 + 5 * HOUR)
    MeterCursor.objects.filter(vm=timeline_vm).update(metered_until=T0, status="", closed=False)
    services.usage_meter(until=T0 + 6 * HOUR)
    services.usage_charge_pending()

    # Then nothing more is recorded or charged
    assert UsageRecord.objects.count() == 3
    assert Wallet.objects.get(project=project).balance == balance
    assert LedgerEntry.objects.filter(project=project).count() == 1
    assert selectors.ledger_problems() == []


def test_a_failed_create_charges_nothing(project, vm_factory):
    fund(project, "100.00")
    vm_factory([(T0, "building"), (T0 + HOUR / 2, "error")])
    assert services.billing_run_hourly(now=T0 + 10 * HOUR)["usage_records"] == 0
    assert Wallet.objects.get(project=project).balance == D("100.00")
    assert not UsageCharge.objects.exists()


def test_error_after_active_is_not_charged_until_confirmed_again(project, vm_factory):
    vm_factory([(T0, "active"), (T0 + HOUR, "error"), (T0 + 3 * HOUR, "active"), (T0 + 4 * HOUR, "deleted")])
    services.usage_meter(until=T0 + 6 * HOUR)
    assert list(UsageRecord.objects.values_list("hour_start", flat=True).order_by("hour_start")) == [T0, T0 + 3 * HOUR]


def test_metering_only_meters_complete_slots_and_continues_later(project, vm_factory):
    vm = vm_factory([(T0 + HOUR / 2, "active")])
    services.usage_meter(until=T0 + HOUR + HOUR / 2)  # not a boundary: floored to T0 + 1h
    assert list(UsageRecord.objects.values_list("running_seconds", flat=True)) == [1800]
    services.usage_meter(until=T0 + 3 * HOUR)
    assert list(UsageRecord.objects.values_list("running_seconds", flat=True).order_by("hour_start")) == [
        1800,
        3600,
        3600,
    ]
    assert MeterCursor.objects.get(vm=vm).metered_until == T0 + 3 * HOUR


def test_metering_start_skips_history_but_keeps_the_state_in_force(project, vm_factory):
    vm_factory([(T0 - 10 * HOUR, "active")])
    services.usage_meter(until=T0 + 2 * HOUR, starts_at=T0)
    assert list(UsageRecord.objects.values_list("hour_start", "running_seconds").order_by("hour_start")) == [
        (T0, 3600),
        (T0 + HOUR, 3600),
    ]


def test_charges_are_split_by_month_and_use_the_place_of_supply(project, vm_factory):
    set_profile(project, "maharashtra")  # same state as the supplier: CGST + SGST
    month_end = at("2025-05-31 18:30")  # 1 June 00:00 IST
    vm_factory([(month_end - 2 * HOUR, "active")])
    services.usage_meter(until=month_end + 2 * HOUR)
    services.usage_charge_pending()
    charges = list(UsageCharge.objects.order_by("period").values_list("period", "regime", "taxable", "tax", "total"))
    assert [str(c[0]) for c in charges] == ["2025-05-01", "2025-06-01"]
    for _, regime, taxable, tax, total in charges:
        assert (regime, taxable, tax, total) == ("intra", D("3.00"), D("0.54"), D("3.54"))
    assert Wallet.objects.get(project=project).balance == D("-7.08")


def test_usage_selectors_group_by_billing_day_and_vm(project, vm_factory):
    vm_factory([(at("2025-05-01 17:30"), "active"), (at("2025-05-01 19:30"), "stopped")], name="web-1")
    services.usage_meter(until=at("2025-05-01 20:30"))
    from datetime import date

    days = selectors.usage_by_day(project=project, month=date(2025, 5, 1))
    # 17:30-18:30 UTC is 23:00-24:00 IST on 1 May; the rest is 2 May in IST.
    assert [(str(d["day"]), d["running_hours"], d["stopped_hours"]) for d in days] == [
        ("2025-05-01", D("1.00"), D("0")),
        ("2025-05-02", D("1.00"), D("1.00")),
    ]
    [vm] = selectors.usage_by_vm(project=project, month=date(2025, 5, 1))
    assert (vm["vm"], vm["running_hours"], vm["amount"]) == ("web-1", D("2.00"), D("3.25"))


def test_the_charge_job_stops_at_its_deadline_and_says_there_is_more(project, vm_factory):
    import time

    vm_factory([(T0, "active")])
    services.usage_meter(until=T0 + 2 * HOUR)
    assert services.usage_charge_pending(deadline=time.monotonic() - 1) == (0, True)
    assert not UsageCharge.objects.exists()
    assert services.usage_charge_pending(deadline=time.monotonic() + 60) == (1, False)
    result = services.billing_run_hourly(now=T0 + 5 * HOUR, budget_seconds=0.000001)
    assert result["more"] is True and result["metered_vms"] == 0
    assert services.billing_run_hourly(now=T0 + 5 * HOUR)["more"] is False


def test_one_failing_project_does_not_hold_up_its_batch(user, plan, image, simulator):
    from unittest import mock

    from accounts.services import project_create
    from tests.fixtures.billing import make_vm

    projects = [project_create(name=f"batch {n}", owner=user) for n in range(5)]
    for project in projects:
        make_vm(project, plan, image, simulator, "vm", [(T0, "active")])
    services.usage_meter(until=T0 + HOUR)
    real = services.charging.usage_charge_wallets

    def charge(*, wallets, settings, before=None):
        if projects[2].pk in {wallet.project_id for wallet in wallets}:
            raise RuntimeError("broken project")
        return real(wallets=wallets, settings=settings, before=before)

    with mock.patch.object(services.charging, "usage_charge_wallets", side_effect=charge):
        assert services.usage_charge_pending(batch=5) == (4, False)
    assert set(UsageCharge.objects.values_list("project_id", flat=True)) == {p.pk for p in projects} - {projects[2].pk}
    assert services.usage_charge_pending() == (1, False)
    assert selectors.ledger_problems() == []

"""Backup storage: metered per closed month in GiB-hours at the operator's price (0 by default:
nothing), from the backup's completion, debited once and invoiced on its own line per VM and
month, beside snapshot storage."""

from decimal import Decimal

from billing import services
from billing.models import BackupStorageRecord, LedgerEntry, UsageCharge
from billing.selectors import billing_settings_get
from compute.choices import BackupState
from compute.models import Backup, VirtualMachine
from tests.billing.test_snapshot_storage import GIB, MAY, T0, _snapshot
from tests.fixtures.billing import HOUR, at, set_profile
from tests.fixtures.factories import PlanFactory

D = Decimal


def _backup(vm, size, completed, **fields):
    backup = Backup.objects.create(vm=vm, backend_ref="", size_bytes=size, completed_at=completed, **fields)
    Backup.objects.filter(pk=backup.pk).update(backend_ref=f"cp-backup-{backup.pk}", created_at=completed - HOUR)
    return backup


def test_backup_storage_is_priced_per_gib_hour_and_invoiced_beside_snapshots(project, supplier, vm_factory):
    # Given 0.0200 per backup GiB-hour and 0.0100 per snapshot GiB-hour; in May a VM with a 4 GiB
    # backup completed at 1 May 05:00 and deleted at 15:00 (10 h), a 1 GiB one completed at 1 May
    # 10:00 still there, a failed one (no size) and a 1 GiB snapshot for 2 hours
    services.billing_settings_update(
        actor="system:tests", backup_price_per_gib_hour=D("0.0200"), snapshot_price_per_gib_hour=D("0.0100")
    )
    set_profile(project, "karnataka")
    vm = vm_factory([(T0, "active")], plan=PlanFactory(price_hourly_running=D("1.0000")))
    _backup(vm, 4 * GIB, T0 + 5 * HOUR, state=BackupState.DELETED, deleted_at=T0 + 15 * HOUR)
    _backup(vm, GIB, T0 + 10 * HOUR, state=BackupState.AVAILABLE)
    _backup(vm, None, T0 + 2 * HOUR, state=BackupState.ERROR)
    _snapshot(vm, "a", GIB, T0, deleted_at=T0 + 2 * HOUR)

    # When the monthly run invoices May on 1 June
    [invoice] = services.invoice_issue_monthly(now=at("2025-06-01 02:00"))

    # Then: 4 x 10 + 1 x (744 - 10) = 774 GiB-hours x 0.02 = 15.48 on its own line, after snapshots
    record = BackupStorageRecord.objects.get(vm=vm, period=MAY)
    assert (record.gib_hours, record.amount) == (D("774.000"), D("15.480000"))
    *_, snapshots, backups = invoice.lines.order_by("position")
    assert (snapshots.description, snapshots.quantity) == (f"Snapshot storage of {vm.name}, May 2025", D("2.0000"))
    assert (backups.unit, backups.quantity, backups.rate, backups.taxable, backups.vm_id) == (
        "GiB-h",
        D("774.0000"),
        D("0.0200"),
        D("15.48"),
        vm.pk,
    )
    assert backups.description == f"Backup storage of {vm.name}, May 2025"
    # And it was debited once (a later run adds nothing); June is metered once June closes
    assert services.backup_storage_charge_pending(now=at("2025-06-02 00:00")) == 0
    debits = LedgerEntry.objects.filter(project=project, description__startswith="Backup storage")
    assert [e.amount for e in debits] == [-(D("15.48") + D("2.79"))]  # IGST 18 %
    assert services.backup_storage_charge_pending(now=at("2025-07-01 00:00")) == 1
    june = BackupStorageRecord.objects.get(vm=vm, period=at("2025-06-01 00:00").date())
    assert june.gib_hours == D("720.000")  # the 1 GiB backup, all 30 days


def test_nothing_at_price_zero_before_the_month_closed_or_once_missing_or_the_vm_deleted(project, supplier, vm_factory):
    vm = vm_factory([(T0, "active"), (T0 + 48 * HOUR, "deleted")], plan=PlanFactory())
    VirtualMachine.objects.filter(pk=vm.pk).update(deleted_at=T0 + 48 * HOUR)
    _backup(vm, GIB, T0, missing_since=T0 + 24 * HOUR)
    _backup(vm, 2 * GIB, T0)  # stored until the VM was deleted
    assert services.backup_storage_charge_pending(now=at("2025-06-01 02:00")) == 0  # price 0: the default
    services.billing_settings_update(actor="system:tests", backup_price_per_gib_hour=D("1.0000"))
    assert services.backup_storage_charge_pending(now=at("2025-05-31 18:35")) == 0  # May ended 5 minutes ago
    assert services.backup_storage_charge_pending(now=at("2025-05-31 18:45")) == 1
    charge = UsageCharge.objects.get(backup_records__vm=vm)
    assert (charge.taxable, charge.period) == (D("120.00"), MAY)  # 1 GiB x 24 h + 2 GiB x 48 h
    assert services.backup_storage_meter(settings=billing_settings_get(), now=at("2025-07-02")) == 0

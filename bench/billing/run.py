"""Billing benchmark on PostgreSQL: hourly metering + charging of a fleet, and
the monthly invoice run.

    .venv/bin/python bench/billing/run.py [--vms 10000] [--projects 5000] [--hours 24] [--charge-only]

Prints wall time and queries per VM / per project / per invoice, each beside a
baseline measured in the same run on the same database, as a ratio:

1. metering one hour of N VMs (services.usage_meter) vs a bare bulk insert of
   the same number of usage rows;
2. charging the hour (services.usage_charge_pending: one transaction per
   project, wallet row lock, ledger entry, audit) vs bare per-project
   transactions that lock a row, insert one row and update it;
3. the monthly invoice run for every project (services.invoice_issue_monthly:
   gapless numbers under a row lock, lines, snapshot, settlement, audit) vs bare
   per-invoice transactions that lock a counter row, insert one document row
   and its line rows.

``--hours`` is how much usage each invoice covers (metered in one catch-up run,
also timed). Uses its own database (BENCH_BILLING_DATABASE_URL, default
.../cp_billing_bench), dropped and created at start.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DB_URL = os.environ.get("BENCH_BILLING_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cp_billing_bench")
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DATABASE_URL": DB_URL,
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14"),
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    }
)


def ensure_database():
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    server = DB_URL.rsplit("/", 1)[0].replace("postgres://", "postgresql://")
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class Counter:
    def __init__(self):
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)


@contextmanager
def measured():
    """Wall time and number of queries of the block."""
    from django.db import connection

    counter = Counter()
    result = {}
    start = time.perf_counter()
    with connection.execute_wrapper(counter):
        yield result
    result["seconds"] = time.perf_counter() - start
    result["queries"] = counter.queries


def setup_fleet(vms: int, projects: int, start):
    """Projects with an owner and a billing profile, a plan, and ``vms`` VMs
    active since ``start``, spread evenly over the projects (bulk: the setup is
    not what is measured)."""
    from accounts.choices import Role
    from accounts.models import Membership, Project, User
    from billing import services
    from billing.models import BillingProfile, LedgerEntry, Wallet
    from compute.models import Hypervisor, Image, Plan, VirtualMachine, VMStatusEvent

    services.billing_settings_update(
        actor="system:bench",
        legal_name="Bench Cloud Pvt Ltd",
        address_line1="1 Bench Road",
        city="Pune",
        pin="411001",
        gstin="27AAPFU0939F1ZV",
        state_code="27",
    )
    owner = User.objects.create_user(email="bench@example.com", password=None)
    rows = Project.objects.bulk_create(Project(name=f"p{n}", slug=f"p{n}") for n in range(projects))
    Membership.objects.bulk_create(Membership(project=p, user=owner, role=Role.OWNER) for p in rows)
    states = ["27", "29", "07", "33"]
    BillingProfile.objects.bulk_create(
        BillingProfile(
            project=p, legal_name=f"Customer {p.pk}", address_line1="2 Main St", city="City", pin="400001",
            state_code=states[p.pk % len(states)],
        )
        for p in rows
    )  # fmt: skip
    # Healthy wallets (the steady state: no low-balance emails), funded by a ledger entry each.
    Wallet.objects.bulk_create(Wallet(project=p, balance=Decimal("100000.00")) for p in rows)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(project=p, kind="topup", amount=Decimal("100000.00"), balance_after=Decimal("100000.00"),
                    description="Top-up", actor="system:bench")
        for p in rows
    )  # fmt: skip
    hv = Hypervisor.objects.create(name="bench-sim", kind="simulator", queue="bench-sim")
    image = Image.objects.create(name="bench-img", os_name="Bench")
    plan = Plan.objects.create(
        name="bench", vcpus=1, memory_mib=1024, disk_gib=20, price_hourly_running=Decimal("1.2345"),
        price_hourly_stopped=Decimal("0.1500"),
    )  # fmt: skip
    machines = VirtualMachine.objects.bulk_create(
        (
            VirtualMachine(
                project=rows[n % projects], owner=owner, name=f"vm{n}", plan=plan, image=image, hypervisor=hv,
                status="active",
            )
            for n in range(vms)
        ),
        batch_size=2000,
    )  # fmt: skip
    events = []
    for n, vm in enumerate(machines):
        events.append(VMStatusEvent(vm=vm, status="building", power_state="unknown", at=start, source="bench"))
        if n % 50 == 49:  # 2%: the create failed
            events.append(
                VMStatusEvent(vm=vm, status="error", power_state="unknown", at=start + timedelta(minutes=3), source="b")
            )
            continue
        events.append(
            VMStatusEvent(vm=vm, status="active", power_state="running", at=start + timedelta(minutes=2), source="b")
        )
        if n % 10 == 9:  # 10%: stopped after 20 minutes
            events.append(
                VMStatusEvent(
                    vm=vm, status="stopped", power_state="stopped", at=start + timedelta(minutes=20), source="b"
                )
            )
    VMStatusEvent.objects.bulk_create(events, batch_size=5000)
    return machines, plan


def baseline_bulk_insert(machines, plan, hour):
    """Bare bulk insert of one usage row per VM, then removed."""
    from billing.models import UsageRecord

    rows = [
        UsageRecord(
            vm_id=vm.pk, project_id=vm.project_id, plan_id=plan.pk, hour_start=hour, running_seconds=3600,
            price_running=plan.price_hourly_running, price_stopped=plan.price_hourly_stopped, sac_code="998315",
            gst_rate=plan.gst_rate, amount=plan.price_hourly_running,
        )
        for vm in machines
    ]  # fmt: skip
    with measured() as result:
        UsageRecord.objects.bulk_create(rows, batch_size=2000)
    UsageRecord.objects.filter(hour_start=hour).delete()
    return result


def baseline_transactions(count: int, lines: int = 0):
    """``count`` transactions of bare work on scratch tables: lock a row,
    insert one row (plus ``lines`` line rows), update the locked row."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, value bigint)")
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_doc (id bigserial PRIMARY KEY, n bigint, total numeric)")
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_line (id bigserial PRIMARY KEY, doc bigint, amount numeric)")
        cursor.execute("TRUNCATE bench_counter, bench_doc, bench_line")
        cursor.execute("INSERT INTO bench_counter SELECT g, 0 FROM generate_series(0, %s) g", [count])
    with measured() as result:
        for n in range(count):
            with transaction.atomic(), connection.cursor() as cursor:
                key = 0 if lines else n  # documents share one counter (a series); debits one row each
                cursor.execute("SELECT value FROM bench_counter WHERE id = %s FOR UPDATE", [key])
                cursor.execute("INSERT INTO bench_doc (n, total) VALUES (%s, 1) RETURNING id", [n])
                if lines:
                    doc = cursor.fetchone()[0]
                    cursor.executemany("INSERT INTO bench_line (doc, amount) VALUES (%s, 1)", [[doc]] * lines)
                cursor.execute("UPDATE bench_counter SET value = value + 1 WHERE id = %s", [key])
    return result


def line(label, result, units, unit_name, baseline=None):
    per = result["queries"] / units
    text = f"   {label:<34} {result['seconds']:8.2f} s  {result['queries']:>8} queries  {per:6.2f}/{unit_name}"
    if baseline:
        text += f"   baseline {baseline['seconds']:6.2f} s  ratio {result['seconds'] / baseline['seconds']:5.1f}x"
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=5_000)
    parser.add_argument("--hours", type=int, default=24, help="usage per invoice (metered in one catch-up)")
    parser.add_argument("--charge-only", action="store_true", help="stop after the hourly charge job (1-2)")
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    from billing import services
    from billing.models import Invoice, UsageRecord
    from billing.periods import HOUR, month_start
    from compute.models import VMStatusEvent

    call_command("migrate", verbosity=0)
    start = month_start(date(2025, 5, 1))
    t = time.perf_counter()
    machines, plan = setup_fleet(args.vms, args.projects, start)
    print(
        f"setup: {args.vms} VMs in {args.projects} projects in {time.perf_counter() - t:.1f} s ({os.cpu_count()} cores)"
    )
    print(f"{args.vms} VMs in {args.projects} projects, {args.hours} h of usage per invoice")

    print("\n1-2. hourly charge job, one hour of the whole fleet")
    base_insert = baseline_bulk_insert(machines, plan, start - 10 * HOUR)
    with measured() as meter:
        metered = services.usage_meter(until=start + HOUR)
    line(f"meter {metered.vms} VMs", meter, args.vms, "VM", base_insert)
    records = UsageRecord.objects.count()
    base_debit = baseline_transactions(args.projects)
    with measured() as charge:
        charges, _ = services.usage_charge_pending()
    line(f"charge {charges} projects ({records} rows)", charge, args.projects, "project", base_debit)
    total = {"seconds": meter["seconds"] + charge["seconds"], "queries": meter["queries"] + charge["queries"]}
    base_total = {"seconds": base_insert["seconds"] + base_debit["seconds"]}
    line("hourly job (meter + charge)", total, args.vms, "VM", base_total)

    if args.charge_only:
        from billing.selectors import ledger_problems

        assert ledger_problems() == [], "ledger unbalanced"
        print("\nchecks: every wallet equals its ledger")
        return
    print(f"\n3. monthly invoices ({args.hours} h of usage each)")
    with measured() as catchup:
        services.usage_meter(until=start + args.hours * HOUR)
    line(f"catch-up meter {args.hours - 1} h", catchup, args.vms, "VM")
    VMStatusEvent.objects.bulk_create(
        (
            VMStatusEvent(vm=vm, status="deleted", power_state="stopped", at=start + args.hours * HOUR, source="b")
            for vm in machines
        ),
        batch_size=5000,
    )
    services.usage_meter(until=start + (args.hours + 1) * HOUR)
    with measured() as charge_rest:
        services.usage_charge_pending()
    line("charge the catch-up", charge_rest, args.projects, "project")
    lines_per_invoice = max(1, round(2 * args.vms / args.projects))
    base_invoice = baseline_transactions(args.projects, lines=lines_per_invoice)
    with measured() as invoicing:
        invoices = services.invoice_issue_monthly(now=month_start(date(2025, 6, 1)) + 2 * HOUR)
    line(f"issue {len(invoices)} invoices", invoicing, len(invoices), "invoice", base_invoice)
    numbers = sorted(Invoice.objects.values_list("sequence", flat=True))
    assert numbers == list(range(1, len(invoices) + 1)), "numbering has a gap"
    from billing.selectors import ledger_problems

    assert ledger_problems() == [], "ledger unbalanced"
    print("\nchecks: invoice numbers gapless, every wallet equals its ledger")


if __name__ == "__main__":
    main()

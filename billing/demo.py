"""A seeded GST month for the demo (billing_seed_demo): three customer projects
of the demo user, one registered in Karnataka, one unregistered in
Maharashtra, one abroad, whose (deleted) VMs ran in last month; last month is
invoiced on the 2nd of this month and one credit note is issued, so that
``manage.py billing_export_gstr1 --month <this month>`` has every common
section. Idempotent: nothing is added once the customers exist."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from accounts.models import Project, User
from accounts.services import project_create
from compute.models import Image, Plan, VirtualMachine, VMStatusEvent

from . import services
from .gst import gstin_check_char
from .models import Invoice
from .periods import month_of, month_start, previous_month

ACTOR = "system:seed"


def _gstin(state: str, pan: str) -> str:
    return f"{state}{pan}1Z" + gstin_check_char(f"{state}{pan}1Z")


CUSTOMERS = {
    "Demo customer Bengaluru (B2B)": {
        "legal_name": "Bengaluru Analytics Private Limited",
        "address_line1": "12 MG Road",
        "city": "Bengaluru",
        "pin": "560001",
        "state_code": "29",
        "gstin": _gstin("29", "AABCB1234K"),
        "hours": 300,
    },
    "Demo customer Pune (unregistered)": {
        "legal_name": "श्री गणेश ट्रेडर्स",
        "address_line1": "5 FC Road",
        "city": "Pune",
        "pin": "411004",
        "state_code": "27",
        "hours": 120,
    },
    "Demo customer Berlin (export)": {
        "legal_name": "Berlin Web GmbH",
        "address_line1": "Torstrasse 1",
        "city": "Berlin",
        "pin": "10119",
        "country": "DE",
        "hours": 200,
    },
}


def demo_gst_month_seed(*, owner: User, now: datetime | None = None) -> list[Invoice]:
    """Seed last month's usage of three demo customers and invoice it (see the
    module docstring). Returns the invoices issued (none when already seeded)."""
    now = now or timezone.now()
    if Project.objects.filter(name__in=CUSTOMERS).exists():
        return []
    plan = Plan.objects.order_by("sort_order", "pk").filter(price_hourly_running__gt=0).first()
    image = Image.objects.order_by("pk").first()
    hypervisor = image.references.first().hypervisor if image else None
    if plan is None or hypervisor is None:
        return []
    start = month_start(previous_month(month_of(now)))
    for name, details in CUSTOMERS.items():
        profile = {key: value for key, value in details.items() if key != "hours"}
        project = project_create(name=name, owner=owner)
        services.billing_profile_update(project=project, actor=ACTOR, **profile)
        services.wallet_topup(
            project=project, amount="20000.00", actor=ACTOR, payment_mode="demo", reference="demo-seed"
        )
        vm = VirtualMachine.objects.create(
            project=project,
            owner=owner,
            name="demo-web",
            plan=plan,
            image=image,
            hypervisor=hypervisor,
            status="deleted",
        )
        ran = start + timedelta(days=1)
        VMStatusEvent.objects.bulk_create(
            VMStatusEvent(vm=vm, status=status, power_state="unknown", at=at, source="demo-seed")
            for at, status in ((ran, "active"), (ran + timedelta(hours=details["hours"]), "deleted"))
        )
    cutoff = month_start(month_of(now))
    services.usage_meter(until=cutoff)
    # Invoiced on the 2nd, credited on the 6th (or now, early in the month: documents are never post-dated).
    issue_at, credit_at = min(now, cutoff + timedelta(days=1, hours=6)), min(now, cutoff + timedelta(days=5))
    issued = [
        services.invoice_issue(project=project, actor=ACTOR, before=cutoff, at=issue_at)
        for project in Project.objects.filter(name__in=CUSTOMERS).order_by("pk")
    ]
    invoices = [invoice for invoice in issued if invoice is not None]
    if invoices:
        services.credit_note_issue(
            invoice=invoices[0],
            amount="100",
            reason="Demo: service credit for a maintenance window",
            actor=ACTOR,
            at=credit_at,
        )
    return invoices

"""GSTR-1 of a month: every section, and totals that reconcile with the
month's invoices and credit notes to the paisa."""

import csv
import io
import json
import zipfile
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing import services
from billing.demo import demo_gst_month_seed
from billing.documents.gstr1 import Gstr1, b2cl_limit
from billing.models import CreditNote, Invoice
from tests.fixtures.accounts import login_operator
from tests.fixtures.billing import HOUR, at, make_vm, set_profile
from tests.fixtures.factories import PlanFactory, UserFactory

D = Decimal
MAY = at("2025-04-30 18:30")  # 1 May 00:00 IST
HEADS = ("txval", "iamt", "camt", "samt")
FIELDS = {"txval": "taxable_total", "iamt": "igst_total", "camt": "cgst_total", "samt": "sgst_total"}


@pytest.fixture
def june(supplier, image, simulator):
    """May's usage of six customers, invoiced on 2 June; four credit notes in June."""
    services.billing_settings_update(actor="system:tests", lut_enabled=True)
    plan = PlanFactory(price_hourly_running=D("10.0000"), price_hourly_stopped=D("0"))
    big = PlanFactory(price_hourly_running=D("200.0000"), price_hourly_stopped=D("0"))
    customers = {
        "karnataka": (plan, 100),  # B2B
        "sez": (plan, 50),  # B2B, SEWP
        "maharashtra_unregistered": (plan, 30),  # B2CS intra
        "karnataka_unregistered": (plan, 20),  # B2CS inter (small)
        "b2cl": (big, 600),  # 120,000 + IGST > 1 lakh, unregistered, inter-state: B2CL
        "abroad": (plan, 40),  # EXP WOPAY (LUT)
    }
    projects = {}
    for kind, (vm_plan, hours) in customers.items():
        project = UserFactory().projects.get()
        profile = {"maharashtra_unregistered": ("maharashtra", {"gstin": ""}), "b2cl": ("karnataka_unregistered", {})}
        base, overrides = profile.get(kind, (kind, {}))
        set_profile(project, base, **overrides)
        make_vm(project, vm_plan, image, simulator, f"vm-{kind}", [(MAY, "active"), (MAY + hours * HOUR, "deleted")])
        projects[kind] = project
    services.usage_meter(until=at("2025-06-01 00:00"))
    invoices = services.invoice_issue_monthly(now=at("2025-06-02 06:00"))
    assert len(invoices) == 6
    by_kind = {kind: Invoice.objects.get(project=project) for kind, project in projects.items()}
    for kind, amount in (("karnataka", "100"), ("maharashtra_unregistered", "50"), ("b2cl", "1000"), ("abroad", "40")):
        services.credit_note_issue(
            invoice=by_kind[kind], amount=amount, reason="SLA", actor="system:tests", at=at("2025-06-10 06:00")
        )
    return by_kind


def _net(sections: dict, head: str) -> Decimal:
    total = sum((D(str(i["itm_det"][head])) for c in sections["b2b"] for v in c["inv"] for i in v["itms"]), D(0))
    total += sum((D(str(i["itm_det"][head])) for c in sections["b2cl"] for v in c["inv"] for i in v["itms"]), D(0))
    total += sum((D(str(i.get(head, 0))) for c in sections["exp"] for v in c["inv"] for i in v["itms"]), D(0))
    total += sum((D(str(row[head])) for row in sections["b2cs"]), D(0))
    total -= sum((D(str(i["itm_det"][head])) for c in sections["cdnr"] for n in c["nt"] for i in n["itms"]), D(0))
    total -= sum((D(str(i["itm_det"][head])) for n in sections["cdnur"] for i in n["itms"]), D(0))
    return total


def test_totals_reconcile_with_the_months_invoices_and_credit_notes(june):
    report = Gstr1(date(2025, 6, 1))
    sections = json.loads(report.json())  # what the offline tool reads
    invoices, notes = Invoice.objects.all(), CreditNote.objects.all()
    for head, field in FIELDS.items():
        expected = sum((getattr(i, field) for i in invoices), D(0)) - sum((getattr(n, field) for n in notes), D(0))
        assert _net(sections, head) == expected, head
        hsn = sum((D(str(row[head])) for tab in sections["hsn"].values() for row in tab), D(0))
        assert hsn == expected, head
    # Invoice and note values are the documents' totals (round-off included)
    values = [v["val"] for c in sections["b2b"] + sections["b2cl"] + sections["exp"] for v in c["inv"]]
    b2cs_total = sum((i.total for i in invoices if i.supply_type == "B2C" and i.total <= b2cl_limit(i.date)), D(0))
    assert sum(D(str(v)) for v in values) + b2cs_total == sum((i.total for i in invoices), D(0))
    # Each CSV row is a document, SAC and rate; a document's rows add up to it
    rows = list(csv.DictReader(io.StringIO(report.csv())))
    assert {row["sac"] for row in rows} == {"998315"} and {row["rate"] for row in rows} == {"18.00"}
    for doc in [*invoices, *notes]:
        assert sum(D(r["taxable"]) for r in rows if r["number"] == doc.number) == doc.taxable_total


def test_each_document_lands_in_its_section(june):
    sections = Gstr1(date(2025, 6, 1)).sections
    assert sections["fp"] == "062025" and sections["gstin"] == "27AAPFU0939F1ZV"
    b2b = {c["ctin"]: c["inv"][0] for c in sections["b2b"]}
    assert {v["inum"] for v in b2b.values()} == {june["karnataka"].number, june["sez"].number}
    assert b2b[june["sez"].customer["gstin"]]["inv_typ"] == "SEWP"
    assert b2b[june["karnataka"].customer["gstin"]]["inv_typ"] == "R"
    assert b2b[june["karnataka"].customer["gstin"]]["idt"] == "02-06-2025"
    [b2cl] = sections["b2cl"]
    assert b2cl["pos"] == "29" and b2cl["inv"][0]["inum"] == june["b2cl"].number
    [exp] = sections["exp"]
    assert exp["exp_typ"] == "WOPAY" and exp["inv"][0]["itms"][0]["iamt"] == D("0")
    b2cs = {(row["sply_ty"], row["pos"]): row for row in sections["b2cs"]}
    assert set(b2cs) == {("INTRA", "27"), ("INTER", "29")}
    # 30 h x 10 = 300, less the 50 credited: 250 net, CGST/SGST 22.50 each
    assert (b2cs[("INTRA", "27")]["txval"], b2cs[("INTRA", "27")]["camt"]) == (D("250.00"), D("22.50"))
    [cdnr] = sections["cdnr"]
    assert cdnr["nt"][0]["ntty"] == "C" and cdnr["nt"][0]["itms"][0]["itm_det"]["txval"] == D("100.00")
    assert {n["typ"] for n in sections["cdnur"]} == {"B2CL", "EXPWOP"}
    docs = {d["doc_typ"]: d["docs"] for d in sections["doc_issue"]["doc_det"]}
    assert docs["Invoices for outward supply"][0]["totnum"] == 6
    assert docs["Credit Note"][0]["from"] == "CN/2526/000001" and docs["Credit Note"][0]["to"] == "CN/2526/000004"
    hsn_b2b = sections["hsn"]["hsn_b2b"]
    assert [(row["hsn_sc"], row["uqc"], row["rt"]) for row in hsn_b2b] == [("998315", "NA", D("18.00"))]


def test_an_empty_month_and_the_command(june, tmp_path):
    empty = Gstr1(date(2025, 7, 1)).sections
    assert all(not empty[s] for s in ("b2b", "b2cl", "b2cs", "exp", "cdnr", "cdnur"))
    target = tmp_path / "gstr1.zip"
    call_command("billing_export_gstr1", "--month", "2025-06", "--output", str(target))
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        assert {"gstr1-062025.json", "gstr1-062025-all.csv", "gstr1-062025-b2b.csv"} <= names
        assert json.loads(archive.read("gstr1-062025.json"))["fp"] == "062025"


def test_the_operator_downloads_it_from_admin(june, client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    login_operator(client, admin)
    response = client.get("/admin/billing/invoice/gstr1/", {"month": "2025-06"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        sections = json.loads(archive.read("gstr1-062025.json"))
    assert len(sections["b2b"]) == 2
    bad = client.get("/admin/billing/invoice/gstr1/", {"month": "June"})
    assert bad.status_code == 302
    assert "GSTR-1" in client.get("/admin/billing/invoice/").content.decode()


def test_the_demo_seeds_a_month_with_a_gstr1(user, supplier, plan, image):
    now = at("2026-06-15 06:00")
    invoices = demo_gst_month_seed(owner=user, now=now)
    assert [i.supply_type for i in invoices] == ["B2B", "B2C", "EXPWP"]
    assert {i.date for i in invoices} == {date(2026, 6, 2)}
    sections = Gstr1(date(2026, 6, 1)).sections
    assert len(sections["b2b"]) == len(sections["b2cs"]) == len(sections["exp"]) == len(sections["cdnr"]) == 1
    assert demo_gst_month_seed(owner=user, now=now) == []  # idempotent

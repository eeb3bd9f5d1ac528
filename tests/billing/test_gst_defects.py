"""The six defects of issue 24, each measured on the old main: no invoice
without the recipient's address, valid numbering settings only, SEZ under LUT
only with an ARN, UTGST in "Other Territory", credit notes within s.34, and
documents that print what an accountant expects."""

import csv
import io
import logging
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.admin.sites import site
from django.core import mail
from django.test import RequestFactory
from pypdf import PdfReader
from rest_framework.test import APIClient

from accounts.models import Project
from audit.models import AuditEvent
from billing import services
from billing.admin_projects import BillingProfileFilter
from billing.documents import exports
from billing.documents.pdf import credit_note_pdf, invoice_pdf
from billing.gst import Customer, credit_note_deadline, prefix_error, tax_heads, treatment
from billing.models import BillingSettings, DocumentSeries, Invoice
from billing.payments.settings import payment_settings_validate
from compute import admission
from compute import services as compute_services
from compute.models import VMRequest
from controlplane.errors import Conflict, InvalidInput
from tests.fixtures.billing import HOUR, at, fund, set_profile
from tests.fixtures.factories import UserFactory

D = Decimal
T0 = at("2025-05-01 04:30")
ISSUED = at("2025-06-01 06:00")


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def pdf_fonts(data: bytes) -> set[str]:
    fonts = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        for ref in page["/Resources"]["/Font"].values():
            fonts.add(str(ref.get_object()["/BaseFont"]).split("+")[-1])
    return fonts


@pytest.fixture
def invoice(project, supplier, vm_factory):
    set_profile(project, "karnataka")
    vm_factory([(T0, "active"), (T0 + 100 * HOUR, "deleted")], name="web-1")
    services.usage_meter(until=T0 + 101 * HOUR)
    return services.invoice_issue(project=project, actor="system:tests", at=ISSUED)


class TestBillingProfileBeforeThePaidMachine:
    def test_billing_registers_the_profile_check_before_the_wallet_check(self):
        checks = admission.registered()
        assert checks.index(services.billing_profile_check) < checks.index(services.wallet_check_can_afford)

    def test_a_paid_vm_is_refused_without_a_profile_with_a_link_to_the_profile_page(
        self, user, project, plan, image, simulator
    ):
        fund(project, "1000.00")  # money is not the problem
        with pytest.raises(Conflict, match=rf"no billing profile yet.*/billing/{project.slug}/profile/"):
            compute_services.vm_request_create(
                user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="web-1"
            )
        assert not VMRequest.objects.filter(project=project).exists()
        set_profile(project, "karnataka_unregistered")
        compute_services.vm_request_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="web-1"
        )
        assert VMRequest.objects.filter(project=project, name="web-1").exists()

    def test_a_free_plan_needs_no_profile(self, project):
        free = type("Plan", (), {"price_hourly_running": D("0"), "price_hourly_stopped": D("0")})()
        services.billing_profile_check(project=project, plan=free)

    def test_the_operator_lists_projects_without_a_profile(self, project, admin_user):
        other = UserFactory().projects.get()
        set_profile(other, "karnataka")
        request = RequestFactory().get("/", {"billing_profile": "missing"})
        request.user = admin_user
        model_admin = site._registry[Project]
        params = {"billing_profile": ["missing"]}
        missing = BillingProfileFilter(request, params, Project, model_admin).queryset(request, Project.objects.all())
        assert project in missing and other not in missing
        params = {"billing_profile": ["present"]}
        present = BillingProfileFilter(request, params, Project, model_admin).queryset(request, Project.objects.all())
        assert list(present) == [other]


class TestNumberLength:
    @pytest.mark.parametrize("prefix, ok", [("INV", True), ("HOST", True), ("HOSTX", False)])
    def test_the_whole_number_must_fit_16_characters(self, prefix, ok):
        # HOSTX/2627/000001 is 17 characters
        assert (prefix_error(prefix) == "") is ok

    def test_saving_a_five_character_prefix_is_refused(self, supplier):
        with pytest.raises(InvalidInput) as caught:
            services.billing_settings_update(actor="system:tests", invoice_prefix="HOSTX")
        assert "at most 16" in caught.value.fields["invoice_prefix"]
        assert "at most 4 characters" in caught.value.fields["invoice_prefix"]
        assert BillingSettings.objects.get().invoice_prefix == "INV"
        assert "refund_voucher_prefix" in payment_settings_validate({"refund_voucher_prefix": "REFND"})

    def test_a_monthly_run_that_cannot_issue_alerts_the_operator(
        self, project, supplier, vm_factory, admin_user, caplog
    ):
        set_profile(project, "karnataka")
        vm_factory([(T0, "active"), (T0 + 2 * HOUR, "deleted")])
        # A series that is full (as an old five-character prefix made it)
        DocumentSeries.objects.create(kind="invoice", prefix="INV", financial_year="2025-26", last_number=999_999)
        with caplog.at_level(logging.ERROR, logger="billing.services.invoices"):
            assert services.invoice_issue_monthly(now=at("2025-06-02 06:00")) == []
        assert "is full" in caplog.text
        event = AuditEvent.objects.get(action="invoice.not_issued")
        assert "is full" in event.details["error"] and event.project_id == project.pk
        [alert] = [m for m in mail.outbox if "could not be issued" in m.subject]
        assert alert.to == [admin_user.email] and project.name in alert.body and "is full" in alert.body


def test_sez_under_lut_needs_lut_on_and_an_arn(supplier):
    with pytest.raises(InvalidInput) as caught:
        services.billing_settings_update(actor="system:tests", lut_for_sez=True)  # LUT off
    assert "ARN" in caught.value.fields["lut_for_sez"]
    with pytest.raises(InvalidInput):
        services.billing_settings_update(actor="system:tests", lut_for_sez=True, lut_enabled=True, lut_reference="")
    services.billing_settings_update(actor="system:tests", lut_for_sez=True, lut_enabled=True)  # fixture's ARN
    assert BillingSettings.objects.get().lut_for_sez


@pytest.mark.parametrize(
    "state, label",
    [
        ("97", "UTGST"),  # Other Territory, CGST Act s.2(114)(f)
        ("04", "UTGST"),
        ("26", "UTGST"),
        ("31", "UTGST"),
        ("35", "UTGST"),
        ("38", "UTGST"),
        ("07", "SGST"),  # Delhi has a legislature
        ("34", "SGST"),  # Puducherry too
        ("01", "SGST"),  # and Jammu and Kashmir
        ("37", "SGST"),  # Andhra Pradesh is a state
    ],
)
def test_union_territories_without_legislature_get_utgst(state, label):
    how = treatment(supplier_state=state, customer=Customer(state_code=state), lut=False)
    assert how.state_tax_label == label
    heads = tax_heads(taxable=D("1000.00"), gst_rate=D("18"), regime=how.regime)
    assert (heads.cgst, heads.sgst) == (D("90.00"), D("90.00"))


class TestCreditNoteDates:
    def test_the_s34_deadline_is_30_november_after_the_financial_year(self):
        assert credit_note_deadline("2025-26") == date(2026, 11, 30)

    def test_not_before_the_invoice_without_a_recorded_reason(self, invoice):
        before = at("2025-05-20 06:00")
        with pytest.raises(InvalidInput, match="before invoice"):
            services.credit_note_issue(invoice=invoice, amount="10", reason="SLA", actor="system:tests", at=before)
        note = services.credit_note_issue(
            invoice=invoice,
            amount="10",
            reason="SLA",
            actor="system:tests",
            at=before,
            backdate_reason="Agreed with the customer before invoicing",
        )
        assert note.date == date(2025, 5, 20)
        event = AuditEvent.objects.get(action="credit_note.issued")
        assert event.details["backdated"] == "Agreed with the customer before invoicing"

    def test_not_after_30_november_following_the_financial_year(self, invoice):
        last_day = at("2026-11-30 12:00")  # 17:30 IST
        services.credit_note_issue(invoice=invoice, amount="1", reason="x", actor="system:tests", at=last_day)
        with pytest.raises(Conflict, match=r"until 30/11/2026 \(CGST Act s.34\(2\)\)"):
            services.credit_note_issue(
                invoice=invoice, amount="1", reason="x", actor="system:tests", at=at("2026-11-30 18:30")
            )  # 1 December IST


class TestDocumentsPrintRight:
    def test_csv_never_prints_negative_zero(self, invoice):
        # A credit note on an inter-state invoice has no CGST/SGST: negated zeros
        services.credit_note_issue(invoice=invoice, amount="10", reason="x", actor="system:tests", at=ISSUED)
        text = exports.documents_csv(start=date(2025, 6, 1), end=date(2025, 6, 30))
        assert "-0.00" not in text
        note_row = list(csv.DictReader(io.StringIO(text)))[1]
        assert (note_row["cgst"], note_row["sgst_utgst"], note_row["igst"]) == ("0.00", "0.00", "-1.80")

    def test_devanagari_names_are_embedded_and_shaped(self, invoice):
        invoice.customer["legal_name"] = "श्री गणेश टेक्नोलॉजीज"
        data = invoice_pdf(invoice)
        assert "श्री गणेश टेक्नोलॉजीज" in pdf_text(data)
        fonts = pdf_fonts(data)
        assert "NotoSans" in fonts and any(font.startswith("NotoSansDevanagari") for font in fonts), fonts

    def test_rupee_sign_and_latin_diacritics_print_as_written(self, invoice):
        invoice.customer["legal_name"] = "Śrī Gaṇeśa Technologies ₹"
        assert "Śrī Gaṇeśa Technologies ₹" in pdf_text(invoice_pdf(invoice))

    def test_the_supply_period_ends_on_the_last_day_supplied(self, project, supplier, vm_factory):
        set_profile(project, "karnataka")
        vm_factory([(at("2026-04-30 18:30"), "active")])  # 1 May 00:00 IST, running through May
        services.usage_meter(until=at("2026-06-01 00:00"))
        [invoice] = services.invoice_issue_monthly(now=at("2026-06-01 01:00"))
        text = pdf_text(invoice_pdf(invoice))
        assert "01/05/2026 to 31/05/2026" in text
        assert "01/06/2026 00:00" not in text

    def test_the_credit_note_names_its_invoice_and_date_on_lines_of_their_own(self, invoice):
        note = services.credit_note_issue(invoice=invoice, amount="10", reason="x", actor="system:tests", at=ISSUED)
        lines = pdf_text(credit_note_pdf(note)).splitlines()
        assert any(line.strip().endswith(invoice.number) and "Against invoice" in line for line in lines)
        assert any("Invoice date" in line and line.strip().endswith("01/06/2025") for line in lines)
        assert not any(line.strip().endswith("dated") for line in lines)
        assert Invoice.objects.count() == 1


def test_the_api_answers_409_with_the_profile_page(user, project, plan, image, simulator):
    fund(project, "1000.00")
    api = APIClient()
    api.force_authenticate(user)
    body = {"project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": "web-1"}
    response = api.post("/api/v1/vm-requests/", body, format="json")
    assert response.status_code == 409
    assert f"/billing/{project.slug}/profile/" in response.json()["error"]["message"]

"""Issue 24's remaining parts: income-tax TDS against an invoice, recipients
identified by a GST-TDS registration or a UIN, and an operator with GST
registrations in several states (GSTIN by the hypervisor's state, a series per
GSTIN, GSTR-1 per GSTIN)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from rest_framework.test import APIClient

from billing import services
from billing.documents.gstr1 import Gstr1
from billing.documents.pdf import invoice_pdf
from billing.gst import GSTINError, gstin_check_char, validate_gstin
from billing.models import LedgerEntry, SupplierLocation, TdsDeduction, UsageCharge
from billing.money import rupees
from billing.selectors import wallet_balance
from controlplane.errors import Conflict, InvalidInput
from tests.billing.test_gst_defects import pdf_text
from tests.fixtures.accounts import login_operator
from tests.fixtures.billing import HOUR, SUPPLIER_GSTIN, at, make_gstin, make_vm, set_profile
from tests.fixtures.factories import HypervisorFactory, UserFactory

D = Decimal
T0 = at("2025-05-01 04:30")
ISSUED = at("2025-06-01 06:00")
KA_GSTIN = make_gstin("29", pan="AAPFU0939F")  # the supplier's PAN, registered in Karnataka
OP = "operator:tests"


def with_check(first14: str) -> str:
    return first14 + gstin_check_char(first14)


UIN = with_check("0717USA00157UN")  # an embassy in Delhi
GST_TDS = with_check("27PNEM01234B1D")  # a government deductor in Maharashtra (TAN PNEM01234B)


@pytest.fixture
def invoice(project, supplier, vm_factory):
    set_profile(project, "karnataka")
    vm_factory([(T0, "active"), (T0 + 100 * HOUR, "deleted")], name="web-1")
    services.usage_meter(until=T0 + 101 * HOUR)
    return services.invoice_issue(project=project, actor="system:tests", at=ISSUED)


class TestIncomeTaxTds:
    def test_tds_is_credited_against_the_invoice_on_the_value_before_gst(self, invoice, project):
        # 100 h × ₹1.50 = ₹150.00 before GST (+ ₹27.00 IGST); 10% under 194J(b) is ₹15.
        assert invoice.taxable_total == D("150.00") and invoice.total == D("177.00")
        balance = wallet_balance(project=project)
        deduction = services.tds_record(
            invoice=invoice, section="194J(b)", rate="10", amount="15", deducted_on=date(2025, 6, 5), actor=OP
        )
        assert wallet_balance(project=project) == balance + D("15.00")
        assert deduction.entry.kind == "tds" and deduction.entry.invoice == invoice
        # The invoice is settled: what the wallet paid for it less the TDS credited is what the customer paid.
        paid = -LedgerEntry.objects.filter(project=project, kind="usage").aggregate(s=Sum("amount"))["s"]
        assert paid == invoice.total and paid - deduction.amount == D("162.00")
        with pytest.raises(Conflict, match="at most ₹15.00"):
            services.tds_record(
                invoice=invoice, section="194J(b)", rate="10", amount="0.01", deducted_on=date(2025, 6, 5), actor=OP
            )

    def test_credit_notes_lower_the_base(self, invoice):
        services.credit_note_issue(
            invoice=invoice, amount="100", reason="SLA", actor="system:tests", at=ISSUED + timedelta(days=9)
        )
        assert rupees(D("50.00") * 2 / 100) == D("1")
        with pytest.raises(Conflict, match="₹50.00"):
            services.tds_record(
                invoice=invoice, section="194J(a)", rate="2", amount="2", deducted_on=date(2025, 6, 5), actor=OP
            )
        assert services.tds_record(
            invoice=invoice, section="194J(a)", rate="2", amount="1", deducted_on=date(2025, 6, 5), actor=OP
        )

    @pytest.mark.parametrize(
        "changes, field",
        [
            ({"section": "194Q"}, "section"),
            ({"section": "194C", "rate": "10"}, "rate"),
            ({"rate": "ten"}, "rate"),
            ({"rate": "-1"}, "rate"),
            ({"amount": "1.234"}, "amount"),
            ({"amount": "0"}, "amount"),
            ({"deducted_on": date(2099, 1, 1)}, "deducted_on"),
            ({"certificate_number": "AB-12", "certificate_date": date(2025, 6, 30)}, "certificate_number"),
        ],
    )
    def test_bad_input_is_a_field_error_and_nothing_is_written(self, invoice, changes, field):
        values = {"section": "194J(b)", "rate": "10", "amount": "5", "deducted_on": date(2025, 6, 5)} | changes
        with pytest.raises(InvalidInput) as caught:
            services.tds_record(invoice=invoice, actor=OP, **values)
        assert field in caught.value.fields
        assert not TdsDeduction.objects.exists()
        assert not LedgerEntry.objects.filter(kind="tds").exists()

    def test_the_certificate_comes_later_once(self, invoice):
        deduction = services.tds_record(
            invoice=invoice, section="194C", rate="2", amount="3", deducted_on=date(2025, 6, 5), actor=OP
        )
        with pytest.raises(InvalidInput):
            services.tds_certificate_record(deduction=deduction, number="ABCDEFG", issued_on=date(2025, 6, 1), actor=OP)
        certificate = services.tds_certificate_record(
            deduction=deduction, number="abcdefg", issued_on=date(2025, 7, 15), actor=OP
        )
        assert certificate.number == "ABCDEFG"
        with pytest.raises(Conflict, match="recorded already"):
            services.tds_certificate_record(
                deduction=deduction, number="XYZ1234", issued_on=date(2025, 7, 16), actor=OP
            )

    def test_admin_and_api(self, invoice, client, user):
        login_operator(client, UserFactory(is_staff=True, is_superuser=True))
        url = f"/admin/billing/invoice/{invoice.pk}/tds/"
        form = {"section": "194J(b)", "rate": "12", "amount": "5", "deducted_on": "2025-06-05"}
        refused = client.post(url, form)
        assert refused.status_code == 200 and "at most 10" in refused.content.decode()
        assert client.post(url, form | {"rate": "10"}).status_code == 302
        deduction = TdsDeduction.objects.get()
        listing = client.get("/admin/billing/tdsdeduction/").content.decode()
        assert "Record…" in listing
        cert_url = f"/admin/billing/tdsdeduction/{deduction.pk}/certificate/"
        assert (
            client.post(cert_url, {"certificate_number": "QWERTYU", "certificate_date": "2025-07-20"}).status_code
            == 302
        )
        assert "QWERTYU" in client.get("/admin/billing/tdsdeduction/").content.decode()
        api = APIClient()
        api.force_authenticate(user)
        rows = api.get(f"/api/v1/projects/{invoice.project.slug}/invoices/").json()
        rows = rows["results"] if isinstance(rows, dict) else rows
        assert rows[0]["tds_total"] == "5.00" and rows[0]["einvoice_status"] == "not_required"


class TestUinAndGstTdsRecipients:
    def test_identifiers_have_their_own_shapes_and_the_gstin_check_character(self):
        assert validate_gstin(UIN, "uin") == UIN
        assert validate_gstin(GST_TDS, "gst_tds") == GST_TDS
        with pytest.raises(GSTINError, match="Characters 3 to 12 of a GSTIN"):
            validate_gstin(UIN)
        with pytest.raises(GSTINError, match="A UIN is"):
            validate_gstin(SUPPLIER_GSTIN, "uin")
        with pytest.raises(GSTINError, match="UIN's last"):
            validate_gstin(UIN[:-1] + ("0" if UIN[-1] != "0" else "1"), "uin")
        with pytest.raises(GSTINError, match="GST-TDS registration is"):
            validate_gstin(SUPPLIER_GSTIN, "gst_tds")

    def test_an_embassy_is_invoiced_by_its_uin_and_reported_in_b2b(self, project, supplier, vm_factory):
        set_profile(project, "karnataka", state_code="07", gstin=UIN, registration_type="uin", pin="110021")
        vm_factory([(T0, "active"), (T0 + 10 * HOUR, "deleted")])
        services.usage_meter(until=T0 + 11 * HOUR)
        invoice = services.invoice_issue(project=project, actor="system:tests", at=ISSUED)
        assert (invoice.supply_type, invoice.place_of_supply, invoice.regime) == ("B2B", "07", "inter")
        assert invoice.customer["registration_type"] == "uin"
        assert f"UIN: {UIN}" in pdf_text(invoice_pdf(invoice))
        b2b = Gstr1(date(2025, 6, 1)).sections["b2b"]
        assert [row["ctin"] for row in b2b] == [UIN]

    def test_a_government_deductor_in_the_suppliers_state_pays_cgst_and_sgst(self, project, supplier, vm_factory):
        set_profile(project, "maharashtra", gstin=GST_TDS, registration_type="gst_tds")
        vm_factory([(T0, "active"), (T0 + 10 * HOUR, "deleted")])
        services.usage_meter(until=T0 + 11 * HOUR)
        invoice = services.invoice_issue(project=project, actor="system:tests", at=ISSUED)
        assert (invoice.supply_type, invoice.regime, invoice.cgst_total) == ("B2B", "intra", D("1.35"))
        assert "GSTIN (GST-TDS deductor)" in pdf_text(invoice_pdf(invoice))

    def test_the_api_refuses_a_uin_that_is_not_one(self, project, user, supplier):
        api = APIClient()
        api.force_authenticate(user)
        body = {
            "legal_name": "Embassy of Utopia",
            "address_line1": "50 Shantipath",
            "city": "New Delhi",
            "pin": "110021",
            "state_code": "07",
            "country": "IN",
            "gstin": make_gstin("07"),
            "registration_type": "uin",
        }
        response = api.put(f"/api/v1/projects/{project.slug}/billing-profile/", body, format="json")
        assert response.status_code == 400
        assert "A UIN is" in str(response.json()["error"])
        assert (
            api.put(f"/api/v1/projects/{project.slug}/billing-profile/", body | {"gstin": UIN}, format="json").json()[
                "registration_type"
            ]
            == "uin"
        )


@pytest.fixture
def bengaluru(supplier, tmp_path):
    hypervisor = HypervisorFactory(connection={"state_path": str(tmp_path / "blr.sqlite3")})
    services.supplier_registration_save(
        actor=OP,
        gstin=KA_GSTIN,
        address_line1="12 Whitefield Main Road",
        city="Bengaluru",
        pin="560066",
        invoice_prefix="KAI",
        credit_note_prefix="KAC",
        hypervisors=[hypervisor],
    )
    return hypervisor


class TestSeveralSupplierRegistrations:
    def test_each_hypervisors_usage_is_invoiced_under_its_states_gstin(
        self, project, plan, image, simulator, bengaluru
    ):
        set_profile(project, "karnataka")
        make_vm(project, plan, image, simulator, "pune-1", [(T0, "active"), (T0 + 10 * HOUR, "deleted")])
        make_vm(project, plan, image, bengaluru, "blr-1", [(T0, "active"), (T0 + 20 * HOUR, "deleted")])
        services.usage_meter(until=T0 + 21 * HOUR)
        mh, ka = services.invoices_issue(project=project, actor="system:tests", at=ISSUED)
        assert (mh.number, ka.number) == ("INV/2526/000001", "KAI/2526/000001")
        # From Maharashtra to a Karnataka customer: IGST; from the Karnataka registration: CGST + SGST.
        assert (mh.supplier["gstin"], mh.regime, mh.igst_total) == (SUPPLIER_GSTIN, "inter", D("2.70"))
        assert (ka.supplier["gstin"], ka.supplier["state_code"], ka.regime) == (KA_GSTIN, "29", "intra")
        assert ka.supplier["city"] == "Bengaluru" and ka.supplier["legal_name"] == mh.supplier["legal_name"]
        assert (ka.taxable_total, ka.cgst_total, ka.sgst_total, ka.igst_total) == (D("30.00"), D("2.70"), D("2.70"), 0)
        assert [line.description.split()[2] for line in mh.lines.all()] == ["pune-1"]
        assert [line.description.split()[2] for line in ka.lines.all()] == ["blr-1"]
        debited = -LedgerEntry.objects.filter(project=project, kind="usage").aggregate(s=Sum("amount"))["s"]
        assert debited == mh.total + ka.total
        note = services.credit_note_issue(
            invoice=ka, amount="10", reason="SLA", actor="system:tests", at=ISSUED + timedelta(days=9)
        )
        assert note.number.startswith("KAC/2526/") and note.supplier["gstin"] == KA_GSTIN
        # GSTR-1 per GSTIN: each registration files its own.
        principal, karnataka = Gstr1(date(2025, 6, 1)), Gstr1(date(2025, 6, 1), gstin=KA_GSTIN)
        assert principal.sections["gstin"] == SUPPLIER_GSTIN and karnataka.sections["gstin"] == KA_GSTIN
        assert [v["inum"] for c in principal.sections["b2b"] for v in c["inv"]] == [mh.number]
        assert [v["inum"] for c in karnataka.sections["b2b"] for v in c["inv"]] == [ka.number]
        assert karnataka.name == f"gstr1-062025-{KA_GSTIN}"
        with pytest.raises(InvalidInput, match="not one of the operator's GSTINs"):
            Gstr1(date(2025, 6, 1), gstin=make_gstin("33"))

    @pytest.mark.parametrize("charged_first", [False, True], ids=["charged-by-the-run", "charged-hourly"])
    def test_the_monthly_run_issues_one_invoice_per_registration(
        self, project, plan, image, simulator, bengaluru, charged_first
    ):
        set_profile(project, "karnataka")
        make_vm(project, plan, image, simulator, "pune-1", [(T0, "active"), (T0 + 10 * HOUR, "deleted")])
        make_vm(project, plan, image, bengaluru, "blr-1", [(T0, "active"), (T0 + 20 * HOUR, "deleted")])
        services.usage_meter(until=at("2025-06-01 00:00"))
        if charged_first:  # the run then takes the numbers after making the lines
            services.usage_charge_pending()
        invoices = services.invoice_issue_monthly(now=at("2025-06-02 06:00"))
        assert sorted(i.number for i in invoices) == ["INV/2526/000001", "KAI/2526/000001"]
        mh, ka = sorted(invoices, key=lambda i: i.number)
        assert [line.description.split()[2] for line in mh.lines.all()] == ["pune-1"]
        assert [line.description.split()[2] for line in ka.lines.all()] == ["blr-1"]
        debited = -LedgerEntry.objects.filter(project=project, kind="usage").aggregate(s=Sum("amount"))["s"]
        assert debited == mh.total + ka.total
        assert not UsageCharge.objects.filter(invoice__isnull=True).exists()

    @pytest.mark.parametrize(
        "changes, field, message",
        [
            ({"gstin": make_gstin("29")}, "gstin", "same PAN"),
            ({"gstin": make_gstin("27", pan="AAPFU0939F", entity="2")}, "gstin", "already in state 27"),
            ({"invoice_prefix": "INV"}, "invoice_prefix", "own series"),
            ({"credit_note_prefix": "KAI"}, "credit_note_prefix", "own prefix"),
            ({"invoice_prefix": "KARNAT"}, "invoice_prefix", "16"),
        ],
    )
    def test_a_registration_must_be_the_same_business_with_its_own_series(self, supplier, changes, field, message):
        values = {
            "gstin": KA_GSTIN,
            "address_line1": "12 Whitefield Main Road",
            "city": "Bengaluru",
            "pin": "560066",
            "invoice_prefix": "KAI",
            "credit_note_prefix": "KAC",
        } | changes
        with pytest.raises(InvalidInput) as caught:
            services.supplier_registration_save(actor=OP, **values)
        assert message in caught.value.fields[field]

    def test_the_operator_adds_one_in_admin_and_moves_a_hypervisor(self, supplier, simulator, bengaluru, client):
        login_operator(client, UserFactory(is_staff=True, is_superuser=True))
        form = {
            "gstin": make_gstin("33", pan="AAPFU0939F"),
            "address_line1": "1 Anna Salai",
            "city": "Chennai",
            "pin": "600002",
            "invoice_prefix": "TNI",
            "credit_note_prefix": "TNI",
            "hypervisors": [bengaluru.pk],
        }
        refused = client.post("/admin/billing/supplierregistration/add/", form)
        assert refused.status_code == 200 and "own prefix" in refused.content.decode()
        saved = client.post("/admin/billing/supplierregistration/add/", form | {"credit_note_prefix": "TNC"})
        assert saved.status_code == 302
        assert SupplierLocation.objects.get(hypervisor=bengaluru).registration.gstin.startswith("33")
        settings_refused = services.billing_settings_validate(
            {"invoice_prefix": "TNI", "credit_note_prefix": "CN", "receipt_prefix": "RV", "state_code": "27"}
        )
        assert "TNI" in settings_refused["invoice_prefix"]
        with pytest.raises(InvalidInput) as caught:  # the principal GSTIN may not move into a registration's state
            services.billing_settings_update(actor=OP, gstin=KA_GSTIN, state_code="29")
        assert "in state 29 already" in caught.value.fields["gstin"]

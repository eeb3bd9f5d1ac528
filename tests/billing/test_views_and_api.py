"""Portal pages, the REST API and the operators' admin screens."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.models import Membership
from audit.models import AuditEvent
from billing import services
from billing.models import CreditNote, Invoice, ReceiptVoucher, Wallet
from tests.fixtures.accounts import login_operator
from tests.fixtures.billing import HOUR, at, fund, make_gstin, set_profile
from tests.fixtures.factories import UserFactory

D = Decimal
T0 = at("2025-05-01 04:30")


@pytest.fixture
def billed(project, supplier, vm_factory, plan):
    """A project with a profile, money, some usage and one invoice."""
    set_profile(project, "karnataka")
    fund(project, "500")
    for n in range(3):
        vm_factory([(T0, "active"), (T0 + (n + 2) * HOUR, "stopped")], name=f"web-{n}")
    services.usage_meter(until=T0 + 6 * HOUR)
    services.usage_charge_pending()
    services.invoice_issue(project=project, actor="system:tests", at=T0 + 7 * HOUR)
    return project


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def member(project, role):
    other = UserFactory()
    Membership.objects.create(project=project, user=other, role=role)
    return other


class TestApi:
    def test_wallet_and_ledger_for_members_only(self, billed, user, django_assert_max_num_queries):
        base = f"/api/v1/projects/{billed.slug}"
        body = api_for(user).get(f"{base}/wallet/").json()
        assert body["currency"] == "INR" and D(body["balance"]) == Wallet.objects.get(project=billed).balance
        with django_assert_max_num_queries(8):
            ledger = api_for(user).get(f"{base}/ledger/").json()
        assert ledger["count"] == 3
        [topup] = [row for row in ledger["results"] if row["kind"] == "topup"]
        assert topup["receipt"].startswith("RV/") and topup["amount"] == "500.00"
        outsider = api_for(UserFactory())
        assert outsider.get(f"{base}/wallet/").status_code == 404
        assert outsider.get(f"{base}/wallet/").json()["error"]["code"] == "not_found"

    def test_usage_by_day_and_vm(self, billed, user):
        body = api_for(user).get(f"/api/v1/projects/{billed.slug}/usage/?month=2025-05").json()
        assert body["month"] == "2025-05"
        assert [row["vm"] for row in body["by_vm"]] == ["web-0", "web-1", "web-2"]
        assert [row["running_hours"] for row in body["by_vm"]] == ["2.00", "3.00", "4.00"]
        assert body["by_day"][0]["day"] == "2025-05-01"

    def test_invoices_with_detail_and_pdf(self, billed, user, django_assert_max_num_queries):
        client = api_for(member(billed, Role.VIEWER))
        with django_assert_max_num_queries(8):
            [invoice] = client.get(f"/api/v1/projects/{billed.slug}/invoices/").json()["results"]
        detail = client.get(f"/api/v1/projects/{billed.slug}/invoices/{invoice['id']}/").json()
        assert detail["number"] == invoice["number"] and len(detail["lines"]) == 6
        assert detail["customer"]["gstin"] == make_gstin("29")
        response = client.get(invoice["pdf_url"])
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        other = UserFactory().projects.get()
        assert client.get(f"/api/v1/projects/{other.slug}/invoices/{invoice['id']}/").status_code == 404

    def test_billing_profile_needs_the_admin_role_and_valid_gstin(self, billed):
        url = f"/api/v1/projects/{billed.slug}/billing-profile/"
        body = {
            "legal_name": "Acme Software LLP",
            "address_line1": "1 MG Road",
            "city": "Bengaluru",
            "pin": "560001",
            "state_code": "29",
            "gstin": "29aabct1332l1zb",
        }
        viewer = api_for(member(billed, Role.VIEWER))
        assert viewer.get(url).json()["state_code"] == "29"
        assert viewer.put(url, body, format="json").status_code == 403
        admin = api_for(member(billed, Role.ADMIN))
        response = admin.put(url, body, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["fields"]["gstin"] == ["Write the GSTIN in capital letters: 29AABCT1332L1ZB."]
        body["gstin"] = make_gstin("27")
        error = admin.put(url, body, format="json").json()["error"]
        assert "registered in Maharashtra (27) but the address is in Karnataka (29)" in error["fields"]["gstin"][0]
        body["gstin"] = make_gstin("29")
        assert admin.put(url, body, format="json").json()["legal_name"] == "Acme Software LLP"
        assert AuditEvent.objects.filter(action="billing.profile_updated", project_id=billed.pk).count() == 2

    def test_plan_prices_for_the_request_wizard(self, billed, user, plan):
        rows = api_for(user).get(f"/api/v1/projects/{billed.slug}/plan-prices/").json()
        row = next(r for r in rows if r["plan_id"] == plan.pk)
        assert (row["tax"], row["hourly_running_with_gst"], row["required_balance"], row["required_hours"]) == (
            "IGST",
            "1.77",
            "42.48",
            24,
        )

    def test_staff_see_any_project(self, billed):
        staff = UserFactory(is_staff=True)
        assert api_for(staff).get(f"/api/v1/projects/{billed.slug}/wallet/").status_code == 200


class TestPortal:
    @pytest.mark.parametrize("page", ["", "usage/?month=2025-05", "invoices/", "profile/"])
    def test_pages_render_for_members(self, billed, user, client, page, django_assert_max_num_queries):
        client.force_login(user)
        with django_assert_max_num_queries(26):  # the wallet page also reads payments, burn rate, trial
            response = client.get(f"/billing/{billed.slug}/{page}")
        assert response.status_code == 200
        client.force_login(UserFactory())
        assert client.get(f"/billing/{billed.slug}/{page}").status_code == 404

    def test_wallet_page_shows_the_ledger_and_receipt(self, billed, user, client):
        client.force_login(user)
        html = client.get(f"/billing/{billed.slug}/").content.decode()
        receipt = ReceiptVoucher.objects.get(project=billed)
        assert receipt.number in html and "Usage charge" in html

    def test_profile_form_saves_through_the_service_and_shows_its_errors(self, billed, user, client):
        client.force_login(user)
        data = {"legal_name": "Acme", "address_line1": "1 MG Road", "city": "Pune", "pin": "411001"}
        data |= {"state_code": "27", "country": "IN", "gstin": "27AAPFU0939F1ZX"}
        response = client.post(f"/billing/{billed.slug}/profile/", data)
        assert response.status_code == 200 and "check) character does not match" in response.content.decode()
        data["gstin"] = "27AAPFU0939F1ZV"
        assert client.post(f"/billing/{billed.slug}/profile/", data).status_code == 302
        assert billed.billing_profile.__class__.objects.get(project=billed).gstin == "27AAPFU0939F1ZV"
        client.force_login(member(billed, Role.MEMBER))
        assert client.post(f"/billing/{billed.slug}/profile/", data).status_code == 403

    def test_pdf_downloads(self, billed, user, client):
        client.force_login(user)
        invoice = Invoice.objects.get(project=billed)
        receipt = ReceiptVoucher.objects.get(project=billed)
        assert client.get(f"/billing/{billed.slug}/receipts/{receipt.pk}/pdf/")["Content-Type"] == "application/pdf"
        assert client.get(f"/billing/{billed.slug}/invoices/{invoice.pk}/pdf/").status_code == 200
        assert client.get(f"/billing/{billed.slug}/invoices/999999/pdf/").status_code == 404


class TestAdmin:
    @pytest.fixture
    def operator(self, client, db):
        admin = UserFactory(is_staff=True, is_superuser=True)
        login_operator(client, admin)
        return admin

    def test_top_up_and_adjust_with_a_reason(self, billed, client, operator):
        before = Wallet.objects.get(project=billed).balance
        url = f"/admin/billing/wallet/{billed.pk}/topup/"
        response = client.post(url, {"amount": "250.00", "payment_mode": "NEFT", "reference": "UTR77", "reason": ""})
        assert response.status_code == 302
        response = client.post(f"/admin/billing/wallet/{billed.pk}/adjust/", {"amount": "-5", "reason": ""})
        assert response.status_code == 200 and "required" in response.content.decode().lower()
        client.post(f"/admin/billing/wallet/{billed.pk}/adjust/", {"amount": "-5", "reason": "Fee"})
        assert Wallet.objects.get(project=billed).balance == before + D("245")
        assert AuditEvent.objects.filter(action="wallet.topup", actor=operator.email).exists()
        duplicate = client.post(url, {"amount": "250.00", "reference": "UTR77"})
        assert "already recorded" in duplicate.content.decode()

    def test_credit_note_e_invoice_csv_and_pdfs(self, billed, client, operator):
        invoice = Invoice.objects.get(project=billed)
        response = client.post(
            f"/admin/billing/invoice/{invoice.pk}/credit-note/", {"amount": "1", "reason": "SLA", "date": "2025-06-10"}
        )
        assert response.status_code == 302
        note = CreditNote.objects.get(invoice=invoice)
        assert client.get(f"/admin/billing/invoice/{invoice.pk}/e-invoice/").json()["DocDtls"]["No"] == invoice.number
        csv = client.get("/admin/billing/invoice/export-csv/?start=2025-01-01&end=2030-12-31").content.decode()
        assert invoice.number in csv and note.number in csv
        for url in (
            f"/admin/billing/invoice/{invoice.pk}/pdf/",
            f"/admin/billing/creditnote/{note.pk}/pdf/",
            "/admin/billing/invoice/",
            "/admin/billing/wallet/",
            "/admin/billing/ledgerentry/",
            "/admin/billing/usagerecord/",
        ):
            assert client.get(url).status_code == 200, url

    def test_settings_are_a_singleton_edited_with_validation_and_audit(self, supplier, client, operator):
        response = client.get("/admin/billing/billingsettings/")
        assert response.status_code == 302 and response["Location"].endswith(f"/{supplier.pk}/change/")
        page = client.get(response["Location"])
        form = page.context["adminform"].form
        data = {name: ("" if value is None else value) for name, value in form.initial.items()}
        data.update({"gstin": "29AAPFU0939F1Z1", "lut_enabled": "", "auto_start_after_suspension": ""})
        data = {k: v for k, v in data.items() if v is not False}
        response = client.post(response["Location"], data)
        assert "check) character does not match" in response.content.decode()
        data["gstin"] = "27AAPFU0939F1ZV"
        data["legal_name"] = "Cloud Hosting Pvt Ltd"
        assert client.post(f"/admin/billing/billingsettings/{supplier.pk}/change/", data).status_code == 302
        event = AuditEvent.objects.filter(action="billing.settings_updated").order_by("-id").first()
        assert event.details["changed"]["legal_name"] == ["Cloud Hosting Private Limited", "Cloud Hosting Pvt Ltd"]

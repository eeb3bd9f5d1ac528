"""/api/v1/projects/<slug>/... for billing: wallet, ledger, usage, GST
documents (with PDFs), billing profile and plan prices. Members read with
any role; the billing profile is changed by project admins; staff see all."""

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.choices import Role
from compute.models import Plan
from controlplane.api import ProjectScopedMixin

from .. import selectors, services
from ..documents import pdf
from ..models import BillingProfile
from ..periods import month_of, parse_month
from .serializers import (
    BillingProfileInputSerializer,
    BillingProfileSerializer,
    CreditNoteSerializer,
    InvoiceDetailSerializer,
    InvoiceSerializer,
    LedgerEntrySerializer,
    PlanPriceSerializer,
    ReceiptSerializer,
    UsageSerializer,
    WalletSerializer,
)


class BillingApi(ProjectScopedMixin):
    """Members read with any role; operators see every project."""

    staff_override = True


class ProjectListApi(BillingApi, generics.ListAPIView):
    """A paginated list of one project's rows: ``rows(project)`` gives them."""

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return self.serializer_class.Meta.model.objects.none()
        return self.rows(self.project)


class ProjectWalletApi(BillingApi, APIView):
    @extend_schema(responses=WalletSerializer)
    def get(self, request, slug):
        return Response(WalletSerializer(selectors.wallet_get(project=self.project)).data)


class ProjectLedgerApi(ProjectListApi):
    serializer_class = LedgerEntrySerializer

    def rows(self, project):
        return selectors.ledger_list(project=project)


MONTH = OpenApiParameter("month", str, description="YYYY-MM in the billing time zone; default: this month.")


class ProjectUsageApi(BillingApi, APIView):
    @extend_schema(parameters=[MONTH], responses=UsageSerializer)
    def get(self, request, slug):
        project = self.project
        month = parse_month(request.query_params.get("month"), month_of(timezone.now()))
        body = {
            "month": f"{month:%Y-%m}",
            "by_day": selectors.usage_by_day(project=project, month=month),
            "by_vm": selectors.usage_by_vm(project=project, month=month),
        }
        return Response(UsageSerializer(body).data)


class ProjectInvoiceListApi(ProjectListApi):
    serializer_class = InvoiceSerializer

    def rows(self, project):
        return selectors.invoice_list(project=project).select_related("project")


class ProjectInvoiceDetailApi(BillingApi, APIView):
    @extend_schema(responses=InvoiceDetailSerializer)
    def get(self, request, slug, pk):
        invoice = selectors.invoice_get(project=self.project, pk=pk)
        return Response(InvoiceDetailSerializer(invoice, context={"request": request}).data)


class ProjectCreditNoteListApi(ProjectListApi):
    serializer_class = CreditNoteSerializer

    def rows(self, project):
        return selectors.credit_note_list(project=project).select_related("project")


class ProjectReceiptListApi(ProjectListApi):
    serializer_class = ReceiptSerializer

    def rows(self, project):
        return selectors.receipt_list(project=project).select_related("project")


def pdf_response(data: bytes, number: str) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{number.replace("/", "-")}.pdf"'
    return response


class DocumentPdfApi(BillingApi, APIView):
    """The document as a PDF (application/pdf)."""

    getter = staticmethod(selectors.invoice_release_get)
    render = staticmethod(pdf.invoice_pdf)

    @extend_schema(responses={(200, "application/pdf"): bytes})
    def get(self, request, slug, pk):
        doc = self.getter(project=self.project, pk=pk)
        return pdf_response(self.render(doc), doc.number)


class ProjectInvoicePdfApi(DocumentPdfApi):
    pass


class ProjectCreditNotePdfApi(DocumentPdfApi):
    getter = staticmethod(selectors.credit_note_get)
    render = staticmethod(pdf.credit_note_pdf)


class ProjectReceiptPdfApi(DocumentPdfApi):
    getter = staticmethod(selectors.receipt_get)
    render = staticmethod(pdf.receipt_pdf)


class ProjectBillingProfileApi(BillingApi, APIView):
    @extend_schema(
        responses=BillingProfileSerializer,
        description="The project's billing profile; before one is saved, every field blank (country IN, "
        "is_sez false) and updated_at null: the same shape either way.",
    )
    def get(self, request, slug):
        profile = selectors.profile_get(project=self.project) or BillingProfile(project=self.project)
        return Response(BillingProfileSerializer(profile).data)

    def project_role_needed(self) -> str:
        return Role.ADMIN if self.request.method == "PUT" else Role.VIEWER

    @extend_schema(request=BillingProfileInputSerializer, responses=BillingProfileSerializer)
    def put(self, request, slug):
        serializer = BillingProfileInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = services.billing_profile_update(project=self.project, actor=request.user, **serializer.validated_data)
        return Response(BillingProfileSerializer(profile).data)


class ProjectPlanPricesApi(BillingApi, APIView):
    """Every active plan's price for this project, with GST, and the balance a
    new VM of it needs (the request wizard shows this before confirming)."""

    @extend_schema(responses=PlanPriceSerializer(many=True))
    def get(self, request, slug):
        project = self.project
        rows = []
        for plan in Plan.objects.filter(active=True):
            price = selectors.plan_price_for_project(plan=plan, project=project)
            rows.append(
                {
                    "plan": plan.name,
                    "plan_id": plan.pk,
                    "tax": price.tax_label,
                    "gst_rate": plan.gst_rate,
                    "hourly_running": plan.price_hourly_running,
                    "hourly_running_with_gst": price.running.total,
                    "hourly_stopped": plan.price_hourly_stopped,
                    "hourly_stopped_with_gst": price.stopped.total,
                    "monthly_with_gst": price.monthly.total,
                    "hours_per_month": price.hours_per_month,
                    "required_balance": price.period_total,
                    "required_hours": price.hours,
                }
            )
        return Response(PlanPriceSerializer(rows, many=True).data)

"""Portal pages: wallet and ledger, usage, GST documents, billing profile.
Plain templates (a portal helper styles them later)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.choices import Role
from accounts.selectors import project_require_role
from accounts.views.common import with_project

from . import selectors
from .api.views import pdf_response
from .documents import charts, pdf
from .forms import BillingProfileForm
from .payments.views import wallet_context
from .periods import month_of, next_month, parse_month, previous_month
from .selectors_bandwidth import transfer_by_vm

# Billing pages: members with any role, and operators whatever their membership.
billing_page = with_project(Role.VIEWER, staff_override=True)


@billing_page
def wallet(request, project):
    entries = Paginator(selectors.ledger_list(project=project), 50).get_page(request.GET.get("page"))
    context = {
        "project": project,
        "wallet": selectors.wallet_get(project=project),
        "entries": entries,
        "receipts": selectors.receipt_list(project=project)[:20],
        **wallet_context(project=project, amount_text=request.GET.get("amount", "")),
    }
    return render(request, "billing/wallet.html", context)


@billing_page
def usage(request, project):
    month = parse_month(request.GET.get("month"), month_of(timezone.now()))
    days = selectors.usage_by_day(project=project, month=month)
    vms = selectors.usage_by_vm(project=project, month=month)
    context = {
        "project": project,
        "month": month,
        "previous": previous_month(month),
        "next": next_month(month),
        "days": days,
        "vms": vms,
        "day_chart": charts.usage_by_day_chart(month=month, days=days),
        "vm_chart": charts.spend_by_vm_chart(vms=vms),
        "transfer_price": (price := selectors.billing_settings_get().transfer_price_per_gb),
        "transfers": transfer_by_vm(project=project, month=month, price_per_gb=price),
        "current_month": month == month_of(timezone.now()),
    }
    return render(request, "billing/usage.html", context)


@billing_page
def documents(request, project):
    context = {
        "project": project,
        "invoices": selectors.invoice_list(project=project),
        "credit_notes": selectors.credit_note_list(project=project),
        "einvoice_required": selectors.billing_settings_get().einvoice_required,
    }
    return render(request, "billing/documents.html", context)


def _pdf_view(getter, renderer):
    @billing_page
    def view(request, project, pk):
        doc = getter(project=project, pk=pk)
        return pdf_response(renderer(doc), doc.number)

    return view


invoice_pdf = _pdf_view(selectors.invoice_release_get, pdf.invoice_pdf)
credit_note_pdf = _pdf_view(selectors.credit_note_get, pdf.credit_note_pdf)
receipt_pdf = _pdf_view(selectors.receipt_get, pdf.receipt_pdf)


@billing_page
def profile(request, project):
    current = selectors.profile_get(project=project)
    initial = {name: getattr(current, name) for name in BillingProfileForm.base_fields} if current else {}
    form = BillingProfileForm(request.POST or None, initial=initial)
    if request.method == "POST":
        project_require_role(user=request.user, project=project, role=Role.ADMIN, staff_override=True)
        if form.is_valid() and form.save(project=project, actor=request.user):
            messages.success(request, "Billing profile saved.")
            return redirect("billing:profile", slug=project.slug)
    return render(request, "billing/profile.html", {"project": project, "form": form, "profile": current})

"""Portal: paying into the wallet (Razorpay Checkout hand-off and its
callback, bank/UPI transfer reports), the UPI QR, refund voucher PDFs, and
what the wallet page shows about paying."""

from __future__ import annotations

import segno
from csp.decorators import csp_update
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.choices import Role
from accounts.views.common import with_project
from controlplane.errors import InvalidInput

from .. import selectors as billing_selectors
from ..api.views import pdf_response
from ..choices import PaymentStatus
from ..documents import pdf
from ..services.ledger import amount_parse
from . import selectors
from .gateway import to_paise
from .razorpay import razorpay_callback, razorpay_order_create
from .transfers import transfer_report

pay_page = with_project(Role.MEMBER, staff_override=True)
read_page = with_project(Role.VIEWER, staff_override=True)


def wallet_context(*, project, amount_text: str = "") -> dict:
    """What the wallet page says about money: burn rate, methods, pending transfers, trial, QR."""
    settings = selectors.payment_settings_get()
    try:
        amount = amount_parse(amount_text) if amount_text else None
    except InvalidInput:  # a bad ?amount= only leaves the amount out of the QR
        amount = None
    upi = None
    if settings.bank_transfer_enabled and settings.upi_id:
        uri = selectors.upi_uri(settings=settings, project=project, amount=amount if amount and amount > 0 else None)
        upi = {"uri": uri, "svg": segno.make(uri, error="m").svg_inline(scale=4, title="UPI payment QR code")}
    billing_settings = billing_selectors.billing_settings_get()
    return {
        "burn": selectors.burn_rate(project=project, billing_settings=billing_settings),
        "pay": settings,
        "razorpay_on": selectors.razorpay_available(settings),
        "pending": list(selectors.payments_pending(project=project)),
        "recent_payments": selectors.payment_list(project=project).exclude(status=PaymentStatus.PENDING)[:10],
        "refunds": selectors.refund_list(project=project)[:10],
        "trial": selectors.trial_active(project=project),
        "transfer_reference": selectors.transfer_reference(project),
        "upi": upi,
        "qr_amount": amount,
        "has_profile": billing_selectors.profile_get(project=project) is not None,
        "billing_settings": billing_settings,
    }


# Razorpay Checkout is a script and frames from Razorpay: only this page lets them past the CSP.
RAZORPAY_CSP = {
    "script-src": ["https://checkout.razorpay.com"],
    "frame-src": ["https://api.razorpay.com", "https://checkout.razorpay.com"],
    "connect-src": ["https://api.razorpay.com", "https://lumberjack.razorpay.com"],
}


@require_POST
@csp_update(RAZORPAY_CSP)
@pay_page
def pay(request, project):
    """Create a Razorpay order and hand the page to Checkout."""
    payment = razorpay_order_create(project=project, amount=request.POST.get("amount", ""), actor=request.user)
    context = {"project": project, "payment": payment, "checkout_options": checkout_options(payment, request.user)}
    return render(request, "billing/pay.html", context)


def checkout_options(payment, user) -> dict:
    """Razorpay Checkout's options for an order (the handler is added in the page)."""
    supplier = billing_selectors.billing_settings_get()
    return {
        "key": selectors.razorpay_keys().key_id,
        "amount": to_paise(payment.amount),
        "currency": payment.currency,
        "order_id": payment.gateway_order_id,
        "name": supplier.trade_name or supplier.legal_name or "Cloud",
        "description": f"Wallet top-up {payment.reference}",
        "prefill": {"name": getattr(user, "full_name", "") or "", "email": getattr(user, "email", "") or ""},
        "notes": {"project": payment.project.slug, "reference": payment.reference},
    }


@require_POST
@pay_page
def pay_callback(request, project):
    """Checkout's handler posts here (``razorpay_payment_id``, ``razorpay_order_id``, ``razorpay_signature``)."""
    result = razorpay_callback(
        project=project,
        order_id=request.POST.get("razorpay_order_id", ""),
        payment_id=request.POST.get("razorpay_payment_id", ""),
        signature=request.POST.get("razorpay_signature", ""),
        actor=request.user,
        request=request,
    )
    (messages.success if result.credited else messages.info)(request, result.message)
    return redirect("billing:wallet", slug=project.slug)


@require_POST
@pay_page
def transfer(request, project):
    payment = transfer_report(
        project=project,
        amount=request.POST.get("amount", ""),
        utr=request.POST.get("utr", ""),
        actor=request.user,
        request=request,
    )
    messages.success(
        request, f"Transfer of ₹{payment.amount} (UTR {payment.utr}) noted; it is credited once the operator sees it."
    )
    return redirect("billing:wallet", slug=project.slug)


@read_page
def refund_voucher_pdf(request, project, pk):
    voucher = selectors.refund_voucher_get(project=project, pk=pk)
    return pdf_response(pdf.refund_voucher_pdf(voucher), voucher.number)

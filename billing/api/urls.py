from django.urls import path

from ..payments import api as payments
from ..payments import webhooks
from . import views

app_name = "billing-api"
project = "projects/<slug:slug>/"
urlpatterns = [
    # Razorpay signs the body (no session, no CSRF token): billing/payments/webhooks.py
    path("payments/razorpay/webhook/", webhooks.razorpay_webhook, name="razorpay-webhook"),
    path(f"{project}wallet/", views.ProjectWalletApi.as_view(), name="wallet"),
    path(f"{project}ledger/", views.ProjectLedgerApi.as_view(), name="ledger"),
    path(f"{project}usage/", views.ProjectUsageApi.as_view(), name="usage"),
    path(f"{project}invoices/", views.ProjectInvoiceListApi.as_view(), name="invoice-list"),
    path(f"{project}invoices/<int:pk>/", views.ProjectInvoiceDetailApi.as_view(), name="invoice-detail"),
    path(f"{project}invoices/<int:pk>/pdf/", views.ProjectInvoicePdfApi.as_view(), name="invoice-pdf"),
    path(f"{project}credit-notes/", views.ProjectCreditNoteListApi.as_view(), name="credit-note-list"),
    path(f"{project}credit-notes/<int:pk>/pdf/", views.ProjectCreditNotePdfApi.as_view(), name="credit-note-pdf"),
    path(f"{project}receipts/", views.ProjectReceiptListApi.as_view(), name="receipt-list"),
    path(f"{project}receipts/<int:pk>/pdf/", views.ProjectReceiptPdfApi.as_view(), name="receipt-pdf"),
    path(f"{project}billing-profile/", views.ProjectBillingProfileApi.as_view(), name="billing-profile"),
    path(f"{project}plan-prices/", views.ProjectPlanPricesApi.as_view(), name="plan-prices"),
    path(f"{project}payments/", payments.ProjectPaymentListApi.as_view(), name="payment-list"),
    path(f"{project}payments/razorpay/orders/", payments.ProjectRazorpayOrderApi.as_view(), name="razorpay-order"),
    path(f"{project}payments/razorpay/verify/", payments.ProjectRazorpayVerifyApi.as_view(), name="razorpay-verify"),
    path(f"{project}payments/transfers/", payments.ProjectTransferApi.as_view(), name="transfer"),
]

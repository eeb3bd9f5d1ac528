from django.urls import path

from . import views
from .payments import views as payment_views

app_name = "billing"
urlpatterns = [
    path("<slug:slug>/", views.wallet, name="wallet"),
    path("<slug:slug>/usage/", views.usage, name="usage"),
    path("<slug:slug>/invoices/", views.documents, name="documents"),
    path("<slug:slug>/invoices/<int:pk>/pdf/", views.invoice_pdf, name="invoice-pdf"),
    path("<slug:slug>/credit-notes/<int:pk>/pdf/", views.credit_note_pdf, name="credit-note-pdf"),
    path("<slug:slug>/receipts/<int:pk>/pdf/", views.receipt_pdf, name="receipt-pdf"),
    path("<slug:slug>/profile/", views.profile, name="profile"),
    path("<slug:slug>/pay/", payment_views.pay, name="pay"),
    path("<slug:slug>/pay/callback/", payment_views.pay_callback, name="pay-callback"),
    path("<slug:slug>/transfer/", payment_views.transfer, name="transfer"),
    path("<slug:slug>/refund-vouchers/<int:pk>/pdf/", payment_views.refund_voucher_pdf, name="refund-voucher-pdf"),
]

from django.urls import path

from . import views

app_name = "billing"
urlpatterns = [
    path("<slug:slug>/", views.wallet, name="wallet"),
    path("<slug:slug>/usage/", views.usage, name="usage"),
    path("<slug:slug>/invoices/", views.documents, name="documents"),
    path("<slug:slug>/invoices/<int:pk>/pdf/", views.invoice_pdf, name="invoice-pdf"),
    path("<slug:slug>/credit-notes/<int:pk>/pdf/", views.credit_note_pdf, name="credit-note-pdf"),
    path("<slug:slug>/receipts/<int:pk>/pdf/", views.receipt_pdf, name="receipt-pdf"),
    path("<slug:slug>/profile/", views.profile, name="profile"),
]

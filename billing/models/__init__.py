from .compliance import (
    EInvoiceResponse,
    SupplierLocation,
    SupplierRegistration,
    TdsCertificate,
    TdsDeduction,
)
from .config import BillingProfile, BillingSettings
from .documents import (
    CreditNote,
    CreditNoteLine,
    DocumentSeries,
    Invoice,
    InvoiceLine,
    ReceiptVoucher,
)
from .payments import Payment, PaymentSettings, Refund, RefundVoucher, TrialGrant
from .snapshots import BackupStorageRecord, SnapshotStorageRecord
from .transfer import TransferRecord
from .usage import MeterCursor, UsageCharge, UsageRecord
from .wallet import LedgerEntry, Wallet

__all__ = [
    "BackupStorageRecord",
    "BillingProfile",
    "BillingSettings",
    "CreditNote",
    "CreditNoteLine",
    "DocumentSeries",
    "EInvoiceResponse",
    "Invoice",
    "InvoiceLine",
    "LedgerEntry",
    "MeterCursor",
    "Payment",
    "PaymentSettings",
    "ReceiptVoucher",
    "Refund",
    "RefundVoucher",
    "SnapshotStorageRecord",
    "SupplierLocation",
    "SupplierRegistration",
    "TdsCertificate",
    "TdsDeduction",
    "TransferRecord",
    "TrialGrant",
    "UsageCharge",
    "UsageRecord",
    "Wallet",
]

from .config import BillingProfile, BillingSettings
from .documents import (
    CreditNote,
    CreditNoteLine,
    DocumentSeries,
    Invoice,
    InvoiceLine,
    ReceiptVoucher,
)
from .transfer import TransferRecord
from .usage import MeterCursor, UsageCharge, UsageRecord
from .wallet import LedgerEntry, Wallet

__all__ = [
    "BillingProfile",
    "BillingSettings",
    "CreditNote",
    "CreditNoteLine",
    "DocumentSeries",
    "Invoice",
    "InvoiceLine",
    "LedgerEntry",
    "MeterCursor",
    "ReceiptVoucher",
    "TransferRecord",
    "UsageCharge",
    "UsageRecord",
    "Wallet",
]

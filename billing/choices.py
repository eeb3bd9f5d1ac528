"""Values of the billing domain. One comment per value; named groups below."""

from django.db import models


class EntryKind(models.TextChoices):
    TOPUP = "topup", "Top-up"  # money received (a receipt voucher is issued)
    USAGE = "usage", "Usage charge"  # metered usage plus GST; also an invoice's rounding settlement
    REFUND = "refund", "Refund"  # balance paid back to the customer
    ADJUSTMENT = "adjustment", "Adjustment"  # an operator's correction, with a reason
    CREDIT_NOTE = "credit_note", "Credit note"  # credit from a credit note against an invoice
    TRIAL = "trial", "Trial credit"  # the sign-up trial credit (no receipt: nothing was paid)
    TRIAL_EXPIRY = "trial_expiry", "Trial credit expired"  # unused trial credit taken back at its expiry
    TDS = "tds", "Income-tax TDS"  # tax the customer deducted from its payment of an invoice (paid to the government)


class RegistrationType(models.TextChoices):
    REGULAR = "regular", "GSTIN"  # a regular (or SEZ) GST registration
    GST_TDS = "gst_tds", "GST-TDS registration"  # a government deductor registered under s.51 (TAN-based)
    UIN = "uin", "UIN"  # a UN body, embassy or consulate (s.25(9)): Unique Identity Number


class EInvoiceStatus(models.TextChoices):
    REGISTERED = "registered", "Registered (IRN)"  # the IRP's response: IRN, acknowledgement, signed QR code
    REJECTED = "rejected", "Rejected by the IRP"  # the IRP's error list; the invoice stays unregistered


class TdsSection(models.TextChoices):
    S194C = "194C", "194C: work contract"  # 1% (individual/HUF) or 2% (others)
    S194J_A = "194J(a)", "194J(a): fees for technical services"  # 2%
    S194J_B = "194J(b)", "194J(b): fees for professional services"  # 10%
    S194I_A = "194I(a)", "194I(a): rent of plant and machinery"  # 2% (some treat hosting as equipment rent)


# The highest rate (percent) a customer may deduct under each section (Income-tax Act).
TDS_MAX_RATE = {"194C": 2, "194J(a)": 2, "194J(b)": 10, "194I(a)": 2}


class Regime(models.TextChoices):
    INTRA = "intra", "CGST + SGST/UTGST"  # place of supply in the supplier's state
    INTER = "inter", "IGST"  # other state, SEZ, or export with IGST paid
    ZERO_RATED = "zero_rated", "Zero-rated under LUT"  # export (or SEZ) without payment of IGST


class SupplyType(models.TextChoices):
    B2B = "B2B", "Registered business"  # customer has a GSTIN (e-invoiced)
    B2C = "B2C", "Unregistered"  # no GSTIN (not e-invoiced)
    SEZWP = "SEZWP", "SEZ with payment"  # SEZ unit/developer, IGST paid
    SEZWOP = "SEZWOP", "SEZ without payment"  # SEZ under LUT, no IGST
    EXPWP = "EXPWP", "Export with payment"  # customer abroad, IGST paid
    EXPWOP = "EXPWOP", "Export without payment"  # customer abroad under LUT, no IGST


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", "Tax invoice"  # monthly (or on-demand) invoice for usage
    CREDIT_NOTE = "credit_note", "Credit note"  # against an issued invoice (Rule 53)
    RECEIPT = "receipt", "Receipt voucher"  # for a wallet top-up, an advance (Rule 50)
    REFUND_VOUCHER = "refund_voucher", "Refund voucher"  # an advance paid back without a supply (Rule 51)


class PaymentMethod(models.TextChoices):
    RAZORPAY = "razorpay", "Razorpay"  # online: UPI, cards, netbanking through Razorpay Checkout
    BANK_TRANSFER = "bank_transfer", "Bank transfer / UPI"  # paid outside; the customer reports the UTR


class PaymentStatus(models.TextChoices):
    CREATED = "created", "Awaiting payment"  # a Razorpay order exists; nothing captured yet
    PENDING = "pending", "Pending confirmation"  # a reported transfer waiting for an operator
    CREDITED = "credited", "Credited"  # the wallet was credited and a receipt voucher issued
    REJECTED = "rejected", "Rejected"  # an operator found no such transfer (reason in note)


# A payment still waiting for money or for an operator.
OPEN_PAYMENT_STATUSES = (PaymentStatus.CREATED, PaymentStatus.PENDING)


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Sent to the gateway"  # Razorpay accepted it; refund.processed not seen yet
    PROCESSED = "processed", "Processed"  # the gateway paid it out, or the operator paid it (manual)


class MeterStatus(models.TextChoices):
    NONE = "", "Not confirmed yet"  # before the VM's first confirmed event: nothing charged
    BUILDING = "building", "Building"  # create not confirmed: nothing charged
    ACTIVE = "active", "Active"  # charged at the plan's running price
    STOPPED = "stopped", "Stopped"  # charged at the plan's stopped price
    ERROR = "error", "Error"  # state in doubt (failed create, or failed later): nothing charged
    DELETED = "deleted", "Deleted"  # gone: nothing charged, metering of the VM is finished


# Statuses charged, and at which of the plan's prices.
CHARGED_STATUSES = {MeterStatus.ACTIVE: "running", MeterStatus.STOPPED: "stopped"}

# Every audit action this app records (the audit app's registry lists them too).
AUDIT_ACTIONS = (
    "wallet.topup",  # money added; a receipt voucher was issued
    "wallet.adjusted",  # operator adjustment with a reason
    "wallet.debited",  # usage charge, invoice settlement or refund
    "invoice.issued",  # tax invoice numbered and snapshotted
    "credit_note.issued",  # credit note against an invoice
    "billing.settings_updated",  # supplier / policy settings changed
    "billing.profile_updated",  # a project's billing profile changed
    "einvoice.registered",  # the IRP's response (IRN, signed QR code) imported for an invoice
    "einvoice.rejected",  # the IRP's error list imported for an invoice
    "tds.recorded",  # income-tax TDS deducted by the customer, credited to the wallet
    "tds.certificate_recorded",  # the Form 16A of a TDS deduction
    "billing.registration_saved",  # a further supplier GSTIN or its hypervisors changed
    "project.suspended",  # balance below zero past the grace period
    "project.unsuspended",  # a top-up brought the balance back
    "payment.received",  # a Razorpay payment or a confirmed transfer was credited (once)
    "payment.ignored",  # a gateway message or callback that credits nothing (reason in details)
    "payment.transfer_reported",  # a customer reported a bank/UPI transfer (UTR)
    "payment.transfer_rejected",  # an operator found no such transfer
    "refund.issued",  # balance refunded; refund voucher issued
    "refund.processed",  # the gateway confirmed a refund
    "trial.granted",  # sign-up trial credit
    "trial.expired",  # unused trial credit taken back
    "billing.payment_settings_updated",  # payment methods, limits, trial (secrets never in details)
)

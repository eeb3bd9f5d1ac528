from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..choices import EntryKind


class Wallet(models.Model):
    """A project's prepaid balance. ``balance`` caches the sum of its ledger
    entries; it changes only under ``select_for_update`` in the transaction
    that appends the entry (billing.services.wallet)."""

    project = models.OneToOneField(
        # An empty wallet goes with its project; ledger entries (PROTECT) keep a project with money history.
        "accounts.Project",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="wallet",
    )
    balance = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    negative_since = models.DateTimeField(null=True, blank=True, help_text="When the balance went below zero.")
    notified_threshold = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, help_text="Lowest low-balance threshold emailed."
    )
    suspended_by_billing = models.BooleanField(default=False, help_text="The project's suspension is billing's.")
    stopped_vm_ids = models.JSONField(default=list, blank=True, help_text="VMs billing stopped at suspension.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"wallet of {self.project}"


class LedgerEntry(models.Model):
    """One append-only movement of a wallet (positive = credit). Never updated
    or deleted; on PostgreSQL a trigger rejects both."""

    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="ledger_entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    balance_after = models.DecimalField(max_digits=14, decimal_places=2)
    description = models.CharField(max_length=255)
    reason = models.CharField(max_length=500, blank=True, help_text="Why an operator made it.")
    reference = models.CharField(max_length=100, blank=True, help_text="Payment reference; unique per project.")
    actor = models.CharField(max_length=200)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    credit_note = models.ForeignKey(
        "billing.CreditNote", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["project", "-id"])]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(condition=~Q(kind=EntryKind.TOPUP) | Q(amount__gt=0), name="ledger_topup_positive"),
            models.CheckConstraint(
                condition=~Q(kind=EntryKind.REFUND) | Q(amount__lt=0), name="ledger_refund_negative"
            ),
            models.UniqueConstraint(
                fields=["project", "kind", "reference"], condition=~Q(reference=""), name="ledger_reference_unique"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} ({self.project})"

"""All writes of the billing domain. Import from here: ``from billing import services``.

Floors, bottom up (a module imports only those below it): ``config`` and
``documents`` (settings, numbering), ``notifications``, ``ledger`` (lock a
wallet, post an entry, parse an amount), ``metering``, ``suspension``,
``wallet`` (top-up, adjust, refund), ``charging``, ``invoices``; beside the
documents: ``registrations`` (further supplier GSTINs), ``einvoice`` (the
IRP's responses), ``tds`` (income-tax TDS credited to the wallet). Reads are in
``billing.selectors``, which imports no service.
"""

from .backup_storage import backup_storage_charge_pending, backup_storage_meter  # noqa: F401
from .bandwidth import transfer_charge_pending, transfer_meter  # noqa: F401
from .charging import billing_run_hourly, usage_charge_pending, usage_charge_project  # noqa: F401
from .config import (  # noqa: F401
    billing_profile_check,
    billing_profile_update,
    billing_profile_validate,
    billing_settings_update,
    billing_settings_validate,
)
from .einvoice import einvoice_days_left, einvoice_export_check, einvoice_response_import  # noqa: F401
from .invoices import credit_note_issue, invoice_issue, invoice_issue_monthly, invoices_issue  # noqa: F401
from .metering import usage_meter  # noqa: F401
from .notifications import wallet_notify_low_balance  # noqa: F401
from .registrations import supplier_registration_save, supplier_registration_validate  # noqa: F401
from .snapshot_storage import snapshot_storage_charge_pending, snapshot_storage_meter  # noqa: F401
from .suspension import project_suspend, project_unsuspend, suspension_apply, suspension_apply_due  # noqa: F401
from .tds import tds_certificate_record, tds_record  # noqa: F401
from .wallet import (  # noqa: F401
    wallet_adjust,
    wallet_check_can_afford,
    wallet_open,
    wallet_refund,
    wallet_topup,
)

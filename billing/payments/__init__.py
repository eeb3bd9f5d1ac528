"""Payments: money in through Razorpay or a bank/UPI transfer, refunds with
their refund vouchers, and the sign-up trial credit.

Modules, bottom up: ``gateway`` (the Razorpay SDK behind a small typed
wrapper; no Django models), ``selectors`` (reads), ``settings`` (the
operator's payment settings), ``credit`` (the one place a payment becomes a
wallet credit, exactly once), ``razorpay`` (orders, the browser callback,
webhooks), ``transfers`` (bank/UPI transfers and statement import),
``refunds`` (refunds and r.51 vouchers), ``trial`` (sign-up credit and its
expiry). Every credit goes through ``billing.services.wallet_topup`` (ledger,
receipt voucher, suspension lifted), every debit through the ledger.
"""

from django.apps import AppConfig

from accounts import hooks
from compute import admission


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Django imports apps.py before any model: services can be imported only now.
        from .payments.trial import trial_grant
        from .services import billing_profile_check, wallet_check_can_afford, wallet_open

        # compute asks billing nothing directly: the profile and wallet pre-checks join its admission checks.
        admission.register(billing_profile_check)
        admission.register(wallet_check_can_afford)
        # Nor does accounts: a new project gets its wallet, a verified address its trial credit.
        hooks.register("project_created", wallet_open)
        hooks.register("email_verified", trial_grant)

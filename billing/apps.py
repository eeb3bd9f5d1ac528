from django.apps import AppConfig

from compute import admission


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Django imports apps.py before any model: services can be imported only now.
        from .services import wallet_check_can_afford

        # compute asks billing nothing directly: the wallet pre-check joins its admission checks.
        admission.register(wallet_check_can_afford)

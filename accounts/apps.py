from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and projects"
    default = True

    def ready(self):
        from . import schema, signals  # noqa: F401  (signal receivers, OpenAPI extension)


class OTPAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin whose default site requires a verified OTP device.

    Listed in INSTALLED_APPS instead of ``django.contrib.admin``, so
    ``admin.site`` (and every app's ``admin.site.register``) is the OTP site.
    """

    default = False  # AccountsConfig is this module's default
    default_site = "accounts.admin_site.AdminSite"

from django.contrib import admin
from django_otp.admin import OTPAdminSite

from audit.admin_mixins import AuditedAdminMixin


class AdminSite(OTPAdminSite):
    """The operators' admin: staff or superuser AND a session verified with an OTP device.

    A staff user without a confirmed device cannot log in here; they enrol at
    /accounts/2fa/ in the portal first (docs/SECURITY.md).

    Every ModelAdmin registered here (ours and third-party apps') is audited:
    ``register`` mixes ``audit.admin.AuditedAdminMixin`` into any admin class
    that does not have it, so each add, change, delete and action records an
    audit event.
    """

    site_header = "Control Plane operations"
    site_title = "Control Plane admin"
    index_title = "Operations"

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedAdminMixin):
            admin_class = type(f"Audited{admin_class.__name__}", (AuditedAdminMixin, admin_class), {})
        super().register(model_or_iterable, admin_class, **options)

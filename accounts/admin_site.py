from django_otp.admin import OTPAdminSite


class AdminSite(OTPAdminSite):
    """The operators' admin: staff or superuser AND a session verified with an OTP device.

    A staff user without a confirmed device cannot log in here; they enrol at
    /accounts/2fa/ in the portal first (docs/SECURITY.md).
    """

    site_header = "Control Plane operations"
    site_title = "Control Plane admin"
    index_title = "Operations"

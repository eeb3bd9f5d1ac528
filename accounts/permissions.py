from rest_framework.permissions import SAFE_METHODS, BasePermission

from controlplane.errors import ServiceError

from .models import AccessToken
from .security import check_recent_otp


class ReadOnlyTokenPermission(BasePermission):
    """A read-only API token may only read (GET, HEAD, OPTIONS). In the
    default permission classes, so it applies to every API view that keeps them."""

    message = "This API token is read-only."

    def has_permission(self, request, view):
        token = request.auth
        return not (isinstance(token, AccessToken) and token.read_only and request.method not in SAFE_METHODS)


class RecentOTP(BasePermission):
    """For destructive API actions: see ``accounts.security.check_recent_otp``.

    Add it to a view's ``permission_classes`` (next to the defaults), or call
    ``check_recent_otp(request)`` inside an action.
    """

    message = "This action needs a current two-factor code: send it in the X-OTP-Token header."

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        try:
            check_recent_otp(request)
        except ServiceError:
            return False
        return True


class StaffPower(BasePermission):
    """Operators only. Through the API a staff user has staff powers only with a
    staff-scoped token or an OTP-verified session (accounts.authentication): an
    ordinary token of a staff user arrives here as an ordinary user."""

    message = (
        "This needs staff powers: use a staff-scoped API token (created with a current two-factor code) "
        "or a session verified with a code."
    )

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_staff)

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.authentication import SessionAuthentication as DRFSessionAuthentication

from . import selectors, services


class TokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer cpat_...``: a personal access token.

    Sets ``request.auth`` to the AccessToken (``ReadOnlyTokenPermission``
    reads its scope). Only a ``staff`` token of a staff user with 2FA carries
    staff powers; with any other token a staff user acts as an ordinary user
    (``User.withhold_staff_powers``), so a leaked everyday token cannot read every
    tenant or approve requests. A revoked, expired or unknown token is a 401; so is the
    token of a deactivated user. A member of a project that requires 2FA who
    has none gets a 403 until they enrol, as in the portal.
    """

    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = selectors.access_token_find(raw=raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed("This token has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is deactivated.")
        state = token.two_factor
        if state.enrolment_required:
            raise exceptions.PermissionDenied(
                f"Project {state.required_by} requires two-factor authentication: set it up in the portal first."
            )
        services.token_touch(token=token)
        user = token.user
        if (user.is_staff or user.is_superuser) and not (token.staff and state.has_device):
            user.withhold_staff_powers()
        return user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class SessionAuthentication(DRFSessionAuthentication):
    """DRF's session authentication, with staff powers only for a session verified
    with a code (as the admin demands); an unverified staff session acts as an
    ordinary user."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            user = result[0]
            if (user.is_staff or user.is_superuser) and not user.is_verified():
                user.withhold_staff_powers()
        return result

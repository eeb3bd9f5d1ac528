from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, first in AUTHENTICATION_BACKENDS.

    Every web login passes the request, so it is checked; a refused login is
    marked on the request (``login_locked_out``) for the audit receiver.
    ``authenticate()`` without a request (the test client's ``login()``, a
    shell) has no client to lock out and no network attacker: it skips the
    check instead of raising as axes would.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            request.login_locked_out = True
            raise

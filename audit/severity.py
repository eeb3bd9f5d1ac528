"""Which audit events are security events, and how severe: one table from the action.

The security feed (operators' page, staff API, SIEM export) is a view of the
audit log, not a second store: an event is a security event when its action is
in ``SEVERITY`` (or starts with a prefix in ``SEVERITY_PREFIXES``, for families
such as console sessions), and its severity is the table's. To watch a new
action, add it here.
"""

from django.db import models
from django.db.models import Q

from .choices import Action


class Severity(models.TextChoices):
    INFO = "info", "Info"  # worth seeing in the feed: normal security-relevant activity
    WARNING = "warning", "Warning"  # failures and changes an operator should glance at
    CRITICAL = "critical", "Critical"  # privilege changes, alerts, second factors removed


RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

SEVERITY: dict[str, Severity] = {
    Action.AUTH_LOGIN_SUCCEEDED: Severity.INFO,
    Action.AUTH_LOGIN_FAILED: Severity.WARNING,  # wrong password, wrong code, locked out
    Action.AUTH_LOGOUT: Severity.INFO,
    Action.AUTH_2FA_ENABLED: Severity.INFO,
    Action.AUTH_2FA_DISABLED: Severity.CRITICAL,
    Action.AUTH_TOKEN_CREATED: Severity.INFO,
    Action.AUTH_TOKEN_REVOKED: Severity.INFO,
    Action.AUTH_SESSION_REVOKED: Severity.INFO,
    Action.USER_CREATED: Severity.INFO,
    Action.USER_DEACTIVATED: Severity.WARNING,
    Action.USER_REACTIVATED: Severity.WARNING,
    Action.USER_PRIVILEGES_CHANGED: Severity.CRITICAL,  # staff granted or taken
    Action.MEMBER_ROLE_CHANGED: Severity.INFO,
    Action.PROJECT_UPDATED: Severity.INFO,  # includes the 2FA requirement
    Action.HYPERVISOR_CHANGED: Severity.WARNING,
    Action.ADMIN_ACTION: Severity.WARNING,  # anything changed through Django admin
    Action.AUDIT_RETENTION: Severity.WARNING,
    Action.SECURITY_ALERT: Severity.CRITICAL,
}
# Families of actions (named by other apps) that are security events as a whole.
SEVERITY_PREFIXES: dict[str, Severity] = {
    "console.": Severity.INFO,  # console sessions opened and closed
}


def severity_of(action: str) -> Severity | None:
    """The severity of an action, or None when it is not a security event."""
    if action in SEVERITY:
        return SEVERITY[action]
    for prefix, severity in SEVERITY_PREFIXES.items():
        if action.startswith(prefix):
            return severity
    return None


def security_filter(min_severity: str = Severity.INFO) -> Q:
    """A Q for the security events of at least ``min_severity``."""
    floor = RANK[Severity(min_severity)]
    actions = [action for action, severity in SEVERITY.items() if RANK[severity] >= floor]
    query = Q(action__in=[str(a) for a in actions])
    for prefix, severity in SEVERITY_PREFIXES.items():
        if RANK[severity] >= floor:
            query |= Q(action__startswith=prefix)
    return query

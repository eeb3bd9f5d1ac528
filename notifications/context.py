"""The bell's unread count for every portal page (templates/base.html)."""

from . import selectors


def notification_bell(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # A callable: the template evaluates it (one query) only where the top bar is rendered.
    return {"nav_unread": lambda: selectors.notification_unread_count(user=user)}

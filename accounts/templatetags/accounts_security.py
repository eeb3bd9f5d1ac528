from django import template

from ..security import otp_is_recent
from ..selectors import user_has_2fa

register = template.Library()


@register.inclusion_tag("accounts/_otp_field.html", takes_context=True)
def otp_field(context, offer: bool = False):
    """A code field for forms of destructive actions (see security.require_recent_otp),
    required when the user has 2FA and has not entered a code recently; ``offer``
    shows it (optional) even then, for choices that need a code now (staff tokens)."""
    request = context["request"]
    has_2fa = user_has_2fa(user=request.user)
    needed = has_2fa and not otp_is_recent(request)
    return {"needed": needed, "shown": needed or (offer and has_2fa)}

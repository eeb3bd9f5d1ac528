from django import template

from ..security import otp_is_recent
from ..selectors import user_has_2fa

register = template.Library()


@register.inclusion_tag("accounts/_otp_field.html", takes_context=True)
def otp_field(context):
    """A code field for forms of destructive actions (see security.require_recent_otp),
    shown only when the user has 2FA and has not entered a code recently."""
    request = context["request"]
    return {"needed": user_has_2fa(user=request.user) and not otp_is_recent(request)}

from django import template

from ..money import format_inr

register = template.Library()


@register.filter
def inr(value) -> str:
    """``1234567.8`` → ``₹12,34,567.80`` (lakh/crore grouping); empty stays empty."""
    if value is None or value == "":
        return ""
    return f"₹{format_inr(value)}"

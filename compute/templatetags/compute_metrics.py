from django import template

register = template.Library()


@register.filter
def gigabytes(value) -> str:
    """Bytes as decimal GB (10^9), the unit transfer is sold in."""
    value = int(value or 0)
    if value < 10**9:
        return f"{value / 10**6:.1f} MB"
    return f"{value / 10**9:,.2f} GB"

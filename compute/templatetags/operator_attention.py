from django import template

from .. import selectors

register = template.Library()


@register.inclusion_tag("admin/compute/_attention.html")
def attention():
    """The admin landing page's "needs attention" panel."""
    return {"a": selectors.attention_summary()}

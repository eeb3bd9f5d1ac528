from django import template

from ..selectors_capacity import hypervisor_capacity_list

register = template.Library()


@register.simple_tag
def allocation(row, resource: str) -> str:
    allocated = row.allocated.get(resource, 0)
    limit = row.capacity.get(resource) or 0
    if not limit:
        return f"{allocated} / no limit"
    return f"{allocated} / {limit} ({row.percent(resource)}%)"


@register.inclusion_tag("admin/compute/_capacity_warnings.html")
def capacity_warnings():
    """The admin landing page: hypervisors close to full."""
    return {"rows": [row for row in hypervisor_capacity_list() if row.warnings]}

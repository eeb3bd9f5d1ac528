"""Operators: how full each hypervisor is, and its VMs' peak use per day of the last week.
Behind the admin site's own checks (staff with a verified second factor), in the admin's look."""

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render

from .selectors_capacity import RESOURCES, hypervisor_capacity_list, hypervisor_usage_trend

TREND_DAYS = 7


def _capacity(request):
    rows = hypervisor_capacity_list()
    trend = hypervisor_usage_trend(days=TREND_DAYS)
    context = {
        **admin.site.each_context(request),
        "title": "Hypervisor capacity",
        "rows": rows,
        "resources": RESOURCES,
        "warn_percent": settings.VM_METRICS["CAPACITY_WARN_PERCENT"],
        "trend_days": TREND_DAYS,
        "trend": [(row.hypervisor, trend.get(row.hypervisor.pk)) for row in rows],
        "trend_dates": next(iter(trend.values()), None),
    }
    return render(request, "admin/compute/capacity.html", context)


capacity = admin.site.admin_view(_capacity)

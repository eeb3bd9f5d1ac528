"""Operators: how full each hypervisor is. Behind the admin site's own checks (staff with a
verified second factor), in the admin's look."""

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render

from .selectors_capacity import RESOURCES, hypervisor_capacity_list


def _capacity(request):
    rows = hypervisor_capacity_list()
    context = {
        **admin.site.each_context(request),
        "title": "Hypervisor capacity",
        "rows": rows,
        "resources": RESOURCES,
        "warn_percent": settings.VM_METRICS["CAPACITY_WARN_PERCENT"],
    }
    return render(request, "admin/compute/capacity.html", context)


capacity = admin.site.admin_view(_capacity)

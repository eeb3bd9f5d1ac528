"""Operators' admin for IP pools and addresses (registered from compute/admin.py).

Pools are checked by ``ipam_pool_check``; addresses change only through the IPAM services.
"""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render

from audit.admin import ReadOnlyAdmin
from compute import selectors
from compute.models import IPAllocation, IPPool, ReverseDNSRecord, VirtualMachine
from compute.services.ipam import (
    ipam_address_free,
    ipam_address_hold,
    ipam_address_move,
    ipam_pool_check,
    ipam_range_reserve,
)
from compute.services.rdns import rdns_retry_now
from controlplane.errors import InvalidInput, ServiceError


def _form_errors(form: forms.BaseForm, exc: InvalidInput) -> None:
    for field, messages_ in (exc.fields or {"__all__": [exc.message]}).items():
        form.add_error(field if field in form.fields else None, messages_)


class IPPoolForm(forms.ModelForm):
    class Meta:
        model = IPPool
        fields = [
            "name",
            "hypervisor",
            "network",
            "ipv4_prefix",
            "ipv4_gateway",
            "ipv6_prefix",
            "ipv6_gateway",
            "dns_servers",
            "excluded_ranges",
            "cooldown_seconds",
            "active",
            "ipv4_reverse_zone",
            "ipv6_reverse_zone",
        ]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            for name, value in cleaned.items():
                setattr(self.instance, name, value)
            try:
                ipam_pool_check(pool=self.instance)
            except InvalidInput as exc:
                _form_errors(self, exc)
        return cleaned


class RangeForm(forms.Form):
    first = forms.CharField(help_text="First address to reserve.")
    last = forms.CharField(help_text="Last address (at most 4096 in one go).")
    note = forms.CharField(required=False, max_length=200)


@admin.register(IPPool)
class IPPoolAdmin(admin.ModelAdmin):
    form = IPPoolForm
    list_display = ["name", "hypervisor", "network", "ipv4_prefix", "ipv6_prefix", "active", "utilisation"]
    list_filter = ["hypervisor", "active"]
    search_fields = ["name", "network", "ipv4_prefix", "ipv6_prefix"]
    list_select_related = ["hypervisor"]
    actions = ["reserve_range"]

    @admin.display(description="utilisation")
    def utilisation(self, obj):
        usage = selectors.ip_pool_usage(pool=obj)
        return "; ".join(
            f"IPv{family}: {u['assigned']} assigned, {u['reserved']} reserved, {u['cooling']} cooling, "
            f"{u['free']} free ({u['percent']:.1f}% used)"
            for family, u in usage.items()
        )

    @admin.action(description="Reserve a range of addresses (bulk)")
    def reserve_range(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose one pool.", messages.WARNING)
            return None
        pool = queryset.get()
        form = RangeForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                count = ipam_range_reserve(pool=pool, actor=request.user, request=request, **form.cleaned_data)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"{count} addresses of {pool} reserved.", messages.SUCCESS)
                return None
        return render(
            request,
            "admin/compute/reserve_range.html",
            {
                "form": form,
                "pools": queryset,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "title": f"Reserve addresses in {pool}",
            },
        )


class IPAllocationForm(forms.ModelForm):
    """Add = reserve or assign one address; change = move it. The service runs in ``clean``
    (inside the admin's transaction) so its refusals show as form errors."""

    # Not the model field: the row is written by the service in clean(), before model validation.
    ip = forms.CharField(label="Address", max_length=39, required=False, help_text="IPv4 or IPv6 address in the pool.")
    vm = forms.ModelChoiceField(
        queryset=VirtualMachine.objects.exclude(status="deleted"),
        required=False,
        help_text="Assign to this VM (same hypervisor as the pool); empty = reserved.",
    )

    class Meta:
        model = IPAllocation
        fields = ["pool", "vm", "note"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        request = self.request
        try:
            if self.instance.pk:
                self.result = ipam_address_move(
                    allocation=self.instance, vm=cleaned.get("vm"), actor=request.user, request=request
                )
            else:
                self.result = ipam_address_hold(
                    pool=cleaned["pool"],
                    address=cleaned.get("ip", ""),
                    vm=cleaned.get("vm"),
                    note=cleaned.get("note", ""),
                    actor=request.user,
                    request=request,
                )
        except ServiceError as exc:
            _form_errors(self, InvalidInput(exc.message, fields=exc.fields))
        return cleaned


@admin.register(IPAllocation)
class IPAllocationAdmin(admin.ModelAdmin):
    form = IPAllocationForm
    list_display = ["address", "pool", "state", "vm", "cool_until", "note"]
    list_filter = ["state", "family", "pool"]
    search_fields = ["address", "vm__name", "note"]
    list_select_related = ["pool", "vm"]
    actions = ["free"]

    def get_readonly_fields(self, request, obj=None):
        return ["pool", "address", "state", "cool_until", "note"] if obj else ["state", "cool_until"]

    def get_fields(self, request, obj=None):
        return ["pool", "address", "state", "vm", "cool_until", "note"] if obj else ["pool", "ip", "vm", "note"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request
        return form

    def save_model(self, request, obj, form, change):
        obj.pk, obj.address = form.result.pk, form.result.address  # written by the service in form.clean()

    @admin.action(description="Free selected (reserved or cooling) addresses now")
    def free(self, request, queryset):
        for allocation in queryset:
            try:
                ipam_address_free(allocation=allocation, actor=request.user, request=request)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.WARNING)


@admin.register(ReverseDNSRecord)
class ReverseDNSRecordAdmin(ReadOnlyAdmin):
    """What each address's PTR should be and whether PowerDNS has it (written by workers/rdns.py)."""

    list_display = ["address", "ptr", "vm", "custom", "pending", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["pending", "custom"]
    search_fields = ["address", "ptr", "vm__name"]
    list_select_related = ["vm"]
    actions = ["retry_now"]

    @admin.action(description="Write the selected PTR records to PowerDNS now")
    def retry_now(self, request, queryset):
        count = rdns_retry_now(record_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} pending records queued.", messages.SUCCESS)

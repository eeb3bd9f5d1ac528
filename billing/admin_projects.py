"""Suspend / unsuspend and wallet actions on the projects list of the operators' admin.

accounts registers the Project admin; billing (which owns suspension) adds
its actions by re-registering a subclass, so accounts does not depend on billing.
"""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import ProjectAdmin
from accounts.models import Project
from controlplane.errors import ServiceError

from . import services


class SuspendForm(forms.Form):
    reason = forms.CharField(
        max_length=255, widget=forms.Textarea(attrs={"rows": 3}), help_text="Shown to the project's members."
    )


class AdjustForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, help_text="Rupees, for each project; negative debits.")
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text="Recorded and audited."
    )


class BillingProfileFilter(admin.SimpleListFilter):
    """Projects without a billing profile cannot start paid VMs (nor be
    invoiced properly): the operator finds them here."""

    title = "billing profile"
    parameter_name = "billing_profile"

    def lookups(self, request, model_admin):
        return [("missing", "Missing"), ("present", "Present")]

    def queryset(self, request, queryset):
        if self.value() in {"missing", "present"}:
            return queryset.filter(billing_profile__isnull=self.value() == "missing")
        return queryset


class SuspendableProjectAdmin(ProjectAdmin):
    actions = [*(ProjectAdmin.actions or []), "suspend", "unsuspend", "adjust"]
    list_display = [*ProjectAdmin.list_display, "suspended_reason", "has_billing_profile", "wallet_tools"]
    list_filter = [*ProjectAdmin.list_filter, BillingProfileFilter]

    @admin.display(description="Billing profile", boolean=True)
    def has_billing_profile(self, project):
        return hasattr(project, "billing_profile")

    @admin.display(description="Wallet")
    def wallet_tools(self, project):
        """Top up / adjust links for every project (its wallet opens on first use)."""
        links = [("topup", "Top up"), ("adjust", "Adjust"), ("refund", "Refund")]
        return format_html(
            " · ".join(f'<a href="{{}}">{label}</a>' for _, label in links),
            *(reverse(f"admin:billing_wallet_{name}", args=[project.pk]) for name, _ in links),
        )

    @admin.action(description="Adjust the wallet balance (asks for the amount and a reason)")
    def adjust(self, request, queryset):
        form = AdjustForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
            self._each(
                request,
                queryset,
                "Adjusted",
                lambda p: services.wallet_adjust(project=p, amount=amount, actor=request.user, reason=reason),
            )
            return None
        return self._ask(request, queryset, form, "Adjust wallets", "adjust")

    def _ask(self, request, queryset, form, title, action):
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "projects": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "title": title,
            "action": action,
        }
        return render(request, "admin/accounts/suspend_projects.html", context)

    def _each(self, request, queryset, label, call):
        done = 0
        for project in queryset:
            try:
                call(project)
                done += 1
            except ServiceError as exc:
                self.message_user(request, f"{project}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{label}: {done} project(s).", messages.SUCCESS)

    @admin.action(description="Suspend: stop active VMs, refuse new requests and starts (asks for a reason)")
    def suspend(self, request, queryset):
        form = SuspendForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            self._each(
                request,
                queryset,
                "Suspended",
                lambda p: services.project_suspend(project=p, actor=request.user, reason=reason, request=request),
            )
            return None
        return self._ask(request, queryset, form, "Suspend projects", "suspend")

    @admin.action(description="Unsuspend (a negative wallet must be topped up instead)")
    def unsuspend(self, request, queryset):
        self._each(
            request,
            queryset,
            "Unsuspended",
            lambda p: services.project_unsuspend(project=p, actor=request.user, request=request),
        )


admin.site.unregister(Project)
admin.site.register(Project, SuspendableProjectAdmin)

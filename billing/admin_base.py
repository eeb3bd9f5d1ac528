"""What billing's admin screens share: read-only bases, the small service
form page, and GST document lists with their PDF."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html

from controlplane.errors import ServiceError

from .api.views import pdf_response


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def service_form_view(request, *, title, form_class, target, run, back, initial=None):
    """A small form whose valid submit calls ``run(form.cleaned_data)``; service
    errors are shown on the form."""
    form = form_class(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            message = run(form.cleaned_data)
        except ServiceError as exc:
            for field, error in exc.fields.items():
                form.add_error(field if field in form.fields else None, error)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            messages.success(request, message)
            return HttpResponseRedirect(back)
    context = {**admin.site.each_context(request), "title": title, "form": form, "target": target, "back": back}
    return render(request, "admin/billing/service_form.html", context)


class DocumentAdmin(ReadOnlyAdmin):
    list_display = ["number", "date", "project", "supply_type", "place_of_supply", "taxable_total", "total", "pdf"]
    list_filter = ["financial_year", "supply_type", "regime"]
    search_fields = ["number", "project__name", "project__slug"]
    list_select_related = ["project"]
    date_hierarchy = "date"
    renderer = None

    @admin.display(description="PDF")
    def pdf(self, doc):
        name = f"admin:billing_{doc._meta.model_name}_pdf"
        return format_html('<a href="{}">PDF</a>', reverse(name, args=[doc.pk]))

    def get_urls(self):
        name = f"billing_{self.model._meta.model_name}"
        return [
            path("<int:pk>/pdf/", self.admin_site.admin_view(self.pdf_view), name=f"{name}_pdf"),
            *super().get_urls(),
        ]

    def pdf_view(self, request, pk):
        doc = get_object_or_404(self.model, pk=pk)
        return pdf_response(type(self).renderer(doc), doc.number)

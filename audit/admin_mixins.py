"""Auditing of Django admin changes, kept apart from audit/admin.py's registrations
so the admin site (accounts.admin_site) can import it before any model is registered."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Model, QuerySet

from . import services
from .choices import Action

SECRET_FIELD_PARTS = ("password", "secret", "token", "credential", "key")
MASK = "***"


def _plain(value):
    """A form value as JSON-able data (objects by their string, collections as lists)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Model):
        return str(value)
    if isinstance(value, QuerySet | list | tuple | set):
        return sorted(str(item) for item in value)
    return str(value)


def form_changes(form) -> dict:
    """``{field: [old, new]}`` for each changed field of an admin form; secrets masked."""
    changes = {}
    for name in form.changed_data:
        if any(part in name.lower() for part in SECRET_FIELD_PARTS):
            changes[name] = [MASK, MASK]
        else:
            changes[name] = [_plain(form.initial.get(name)), _plain(form.cleaned_data.get(name))]
    return changes


class AuditedAdminMixin:
    """Records every add, change, delete and action made through a ModelAdmin.

    ``audit_action`` (default ``admin.action``; ``hypervisor.changed`` for
    hypervisors) with details: ``operation`` (add, change, delete, action),
    ``model``, ``fields`` (``{name: [old, new]}``, secrets masked as ``***``),
    Django's change message, and for actions the action's name and the objects.
    The request gives actor, address, user agent and request id.
    ``accounts.admin_site.AdminSite.register`` mixes it into every ModelAdmin,
    so nothing registered on the admin escapes it.
    """

    audit_action = Action.ADMIN_ACTION

    def _audit(self, request, operation: str, obj, message="", **extra) -> None:
        details = {"operation": operation, "model": self.model._meta.label_lower, **extra}
        if message:
            details["message"] = message
        services.record(
            actor=request.user,
            action=self.audit_action,
            target=obj if obj is not None and obj.pk is not None else None,
            details=details,
            request=request,
        )

    def audit_changes(self, request) -> dict:
        """The changed fields of the form just saved (see ``save_model``)."""
        return getattr(request, "_audit_changes", {})

    def save_model(self, request, obj, form, change):
        request._audit_changes = form_changes(form)
        super().save_model(request, obj, form, change)

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self._audit(request, "add", obj, message, fields=self.audit_changes(request))
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        self._audit(request, "change", obj, message, fields=self.audit_changes(request))
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            self._audit(request, "delete", obj, object_id=str(obj.pk), object_repr=str(obj)[:200])
        return entries

    def response_action(self, request, queryset):
        name = request.POST.get("action", "")
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if name in self.get_actions(request) and (selected or request.POST.get("select_across") == "1"):
            self._audit(request, "action", None, admin_action=name, objects=selected[:100], count=len(selected))
        return super().response_action(request, queryset)

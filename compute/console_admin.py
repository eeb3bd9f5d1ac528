"""Admin: console sessions, read-only (who opened which VM's console, from where, how it ended)."""

from django.contrib import admin

from .models import ConsoleSession


@admin.register(ConsoleSession)
class ConsoleSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "vm", "user", "protocol", "client_ip", "created_at", "consumed_at", "closed_at", "outcome"]
    list_filter = ["protocol", ("consumed_at", admin.EmptyFieldListFilter)]
    search_fields = ["vm__name", "user__email", "client_ip", "outcome"]
    list_select_related = ["vm", "user"]
    date_hierarchy = "created_at"
    exclude = ["token_hash"]
    readonly_fields = [f.name for f in ConsoleSession._meta.fields if f.name != "token_hash"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

from django.contrib import admin, messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, Exists, OuterRef

from audit.admin_mixins import AuditedAdminMixin, form_changes

from . import services
from .models import AccessToken, Invitation, Membership, Project, SSHKey, TOTPDevice, User


class UserCreationForm(auth_forms.AdminUserCreationForm):
    class Meta(auth_forms.AdminUserCreationForm.Meta):
        model = User
        fields = ("email", "full_name")


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta(auth_forms.UserChangeForm.Meta):
        model = User
        fields = "__all__"


class MembershipInline(admin.TabularInline):
    """Memberships are shown, not edited here: the portal's services keep the
    rules (last owner, audit). Operators act as project owners there."""

    model = Membership
    fk_name = "project"
    extra = 0
    can_delete = False
    fields = ("user", "role", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class UserMembershipInline(MembershipInline):
    fk_name = "user"
    fields = ("project", "role", "created_at")
    readonly_fields = fields


PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ("email", "full_name", "is_active", "is_staff", "two_factor", "is_trusted", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser", "is_trusted")
    search_fields = ("email", "full_name")
    ordering = ("email",)
    readonly_fields = ("is_active", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Status", {"fields": ("is_active", "is_trusted"), "description": "Use the list actions to (de)activate."}),
        ("Operators", {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "usable_password", "password1", "password2")}),
    )
    inlines = [UserMembershipInline]
    actions = ["deactivate", "reactivate"]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_queryset(self, request):
        devices = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(has_2fa=Exists(devices))

    @admin.display(boolean=True, description="2FA", ordering="has_2fa")
    def two_factor(self, obj):
        return obj.has_2fa

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            request._audit_changes = form_changes(form)
            services.user_register(user=obj, actor=request.user, request=request)

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        privileges = {k: v for k, v in self.audit_changes(request).items() if k in PRIVILEGE_FIELDS}
        if privileges:
            services.user_privileges_record(user=obj, actor=request.user, changes=privileges, request=request)
        return entry

    @admin.action(description="Deactivate: end sessions, revoke tokens, block login")
    def deactivate(self, request, queryset):
        users = [user for user in queryset if user.is_active and user.pk != request.user.pk]
        for user in users:
            services.user_deactivate(user=user, actor=request.user, request=request)
        if queryset.filter(pk=request.user.pk).exists():
            self.message_user(request, "You cannot deactivate yourself.", messages.WARNING)
        self.message_user(request, f"Deactivated {len(users)} user(s).", messages.SUCCESS)

    @admin.action(description="Reactivate: allow login again (tokens stay revoked)")
    def reactivate(self, request, queryset):
        users = [user for user in queryset if not user.is_active]
        for user in users:
            services.user_reactivate(user=user, actor=request.user, request=request)
        self.message_user(request, f"Reactivated {len(users)} user(s).", messages.SUCCESS)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    # "member_total", not "members": a model field of that name (the M2M) would win over the
    # method in the change list and show "accounts.User.None".
    list_display = ("name", "slug", "kind", "member_total", "require_2fa", "suspended_at", "created_at")
    list_filter = ("kind", "require_2fa", ("suspended_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "slug", "memberships__user__email")
    readonly_fields = ("slug", "kind", "created_at")
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships", distinct=True))

    @admin.display(description="Members", ordering="member_count")
    def member_total(self, obj):
        return obj.member_count


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "project", "role", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at")
    list_filter = ("role",)
    search_fields = ("email", "project__name")
    list_select_related = ("project", "invited_by")
    exclude = ("token_hash",)
    readonly_fields = [f.name for f in Invitation._meta.fields if f.name != "token_hash"]

    def has_add_permission(self, request):
        return False


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "read_only", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("read_only", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "user__email")
    list_select_related = ("user",)
    exclude = ("secret_hash",)
    readonly_fields = [f.name for f in AccessToken._meta.fields if f.name != "secret_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke")
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            services.token_revoke(token=token, actor=request.user, request=request)
        self.message_user(request, "Tokens revoked.", messages.SUCCESS)


@admin.register(SSHKey)
class SSHKeyAdmin(admin.ModelAdmin):
    """Read-only: users manage their keys in the portal (deleting one changes no VM)."""

    list_display = ("name", "user", "project", "key_type", "bits", "fingerprint", "created_at")
    list_filter = ("key_type", ("project", admin.EmptyFieldListFilter))
    search_fields = ("name", "fingerprint", "comment", "user__email", "project__slug")
    list_select_related = ("user", "project")
    readonly_fields = [f.name for f in SSHKey._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

import zoneinfo
from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from .choices import Role
from .sshkeys import InvalidSSHKey, ssh_key_parse

TOKEN_LIFETIMES = [("", "Never expires"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]


class OTPCodeForm(forms.Form):
    otp_token = forms.CharField(
        label="Code",
        max_length=16,
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


class TwoFactorDisableForm(forms.Form):
    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    otp_token = OTPCodeForm.base_fields["otp_token"]


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=100)


class ProjectSettingsForm(forms.Form):
    name = forms.CharField(max_length=100)
    require_2fa = forms.BooleanField(
        required=False, label="Require two-factor authentication of every member", help_text="Owners only."
    )


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. 'terraform on build host'.")
    lifetime = forms.ChoiceField(choices=TOKEN_LIFETIMES, required=False, label="Expires")
    read_only = forms.BooleanField(required=False, label="Read-only (can only list and view)")
    staff = forms.BooleanField(
        required=False,
        label="Staff powers (operators only: needs your code now; expires within hours, see docs/SECURITY.md)",
    )

    def __init__(self, *args, staff_user: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not staff_user:
            del self.fields["staff"]

    def expires_at(self):
        days = self.cleaned_data.get("lifetime")
        return timezone.now() + timedelta(days=int(days)) if days else None


class SSHKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="E.g. 'laptop' or 'deploy key'.")
    public_key = forms.CharField(
        label="Public key",
        help_text="One line from ~/.ssh/id_ed25519.pub (ssh-ed25519, ssh-rsa of 2048 bits or more, ecdsa).",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    project = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="Only me (personal)",
        label="Shared with",
        help_text="A project's key is offered to every member building a VM there.",
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        self.fields["project"].to_field_name = "slug"

    def clean_public_key(self):
        try:
            return ssh_key_parse(self.cleaned_data["public_key"]).line
        except InvalidSSHKey as exc:
            raise forms.ValidationError(str(exc)) from None


def time_zone_choices() -> list[tuple[str, str]]:
    """Every Area/City zone of the tz database (not the Etc/ and legacy aliases), the
    operator's default first."""
    zones = sorted(
        name
        for name in zoneinfo.available_timezones()
        if "/" in name and name.split("/")[0] not in {"Etc", "SystemV", "US", "Brazil", "Canada", "Chile", "Mexico"}
    )
    named = [(name, name.replace("_", " ")) for name in zones]
    return [("", f"Default ({settings.TIME_ZONE})"), ("UTC", "UTC"), *named]


class ProfileForm(forms.Form):
    full_name = forms.CharField(max_length=150, required=False, label="Full name")
    time_zone = forms.ChoiceField(
        choices=time_zone_choices,
        required=False,
        label="Time zone",
        help_text="Pages show times in this zone, labelled with its abbreviation. The API answers in UTC.",
    )

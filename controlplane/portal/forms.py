from django import forms

from accounts.sshkeys import InvalidSSHKey, ssh_key_parse
from compute import selectors
from compute.models import name_validator


class PlanChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, plan):
        return plan.name


class ImageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, image):
        where = ", ".join(ref.hypervisor.region or ref.hypervisor.name for ref in image.references.all())
        return f"{image.os_name} ({image.name})" + (f" — {where}" if where else "")


class HypervisorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, hypervisor):
        if hypervisor.region:
            return f"{hypervisor.region} ({hypervisor.name})"
        return hypervisor.name


class VMRequestForm(forms.Form):
    """The request wizard's fields. Rules (image fits the plan and the hypervisor,
    SSH key format, name free, quota, balance) are the services'; this only parses."""

    plan = PlanChoiceField(queryset=None, widget=forms.RadioSelect, empty_label=None)
    image = ImageChoiceField(queryset=None, empty_label="Choose an image")
    hypervisor = HypervisorChoiceField(queryset=None, label="Region", empty_label=None)
    name = forms.CharField(
        max_length=63,
        validators=[name_validator],
        help_text="Lowercase letters, digits and hyphens; unique in the project.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    ssh_key_id = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Saved SSH key",
        help_text="From your key library or the project's (Account → SSH keys).",
    )
    ssh_public_key = forms.CharField(
        required=False,
        label="Or paste an SSH public key",
        help_text="One OpenSSH public key (ssh-ed25519 AAAA… or ssh-rsa AAAA…), installed for root.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    user_data = forms.CharField(
        required=False,
        label="User data (cloud-init)",
        help_text="Optional, up to 16 KiB; runs on first boot.",
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
    )

    def __init__(self, *args, plans, images, hypervisors, ssh_keys=(), **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        self.fields["plan"].queryset = plans
        self.fields["image"].queryset = images
        self.fields["hypervisor"].queryset = hypervisors
        self.ssh_keys = {key.pk: key for key in ssh_keys}
        self.fields["ssh_key_id"].choices = [("", "None")] + [
            (key.pk, f"{key.name} ({key.fingerprint}){' · ' + key.project.name if key.project_id else ''}")
            for key in self.ssh_keys.values()
        ]

    def clean_ssh_public_key(self):
        text = self.cleaned_data["ssh_public_key"].strip()
        if text:
            try:
                self.parsed_key = ssh_key_parse(text)
            except InvalidSSHKey as exc:
                raise forms.ValidationError(str(exc)) from None
        return text

    def clean(self):
        data = super().clean()
        if data.get("ssh_key_id") is not None and data.get("ssh_public_key"):
            self.add_error("ssh_public_key", "Choose a saved key or paste one, not both.")
        return data

    def chosen_key(self) -> str:
        """What the review step shows for the key: its type, size and fingerprint."""
        saved = self.ssh_keys.get(self.cleaned_data.get("ssh_key_id"))
        if saved is not None:
            return f"{saved.name}: {saved.key_type} {saved.bits} {saved.fingerprint}"
        parsed = getattr(self, "parsed_key", None)
        if parsed is None:
            return ""
        return " ".join(filter(None, [parsed.key_type, str(parsed.bits), parsed.fingerprint, parsed.comment]))


def wizard_form(data=None, *, initial=None, ssh_keys=()) -> VMRequestForm:
    return VMRequestForm(
        data,
        initial=initial,
        plans=selectors.plan_list_offered(),
        images=selectors.image_list_offered(),
        hypervisors=selectors.hypervisor_list_offered(),
        ssh_keys=ssh_keys,
    )

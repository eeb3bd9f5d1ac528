from django import forms

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
    ssh_public_key = forms.CharField(
        required=False,
        label="SSH public key",
        help_text="One OpenSSH public key (ssh-ed25519 AAAA… or ssh-rsa AAAA…), installed for root.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    user_data = forms.CharField(
        required=False,
        label="User data (cloud-init)",
        help_text="Optional, up to 16 KiB; runs on first boot.",
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
    )

    def __init__(self, *args, plans, images, hypervisors, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        self.fields["plan"].queryset = plans
        self.fields["image"].queryset = images
        self.fields["hypervisor"].queryset = hypervisors


def wizard_form(data=None, *, initial=None) -> VMRequestForm:
    return VMRequestForm(
        data,
        initial=initial,
        plans=selectors.plan_list_offered(),
        images=selectors.image_list_offered(),
        hypervisors=selectors.hypervisor_list_offered(),
    )

from django import forms

from controlplane.errors import InvalidInput

from . import services
from .choices import RegistrationType
from .gst import STATE_CHOICES


class BillingProfileForm(forms.Form):
    """The portal's billing profile form; the rules are the service's."""

    legal_name = forms.CharField(max_length=100, label="Legal name")
    address_line1 = forms.CharField(max_length=100, label="Address")
    address_line2 = forms.CharField(max_length=100, required=False, label="Address (line 2)")
    city = forms.CharField(max_length=50)
    pin = forms.CharField(max_length=10, label="PIN / postal code")
    state_code = forms.ChoiceField(choices=[("", "(abroad)"), *STATE_CHOICES], required=False, label="State")
    country = forms.CharField(max_length=2, initial="IN", help_text="Two-letter code: IN for India.")
    gstin = forms.CharField(max_length=20, required=False, label="GSTIN", help_text="Blank if not registered.")
    registration_type = forms.ChoiceField(
        choices=RegistrationType.choices,
        initial=RegistrationType.REGULAR,
        required=False,
        label="The number above is a",
        help_text="Government deductors: GST-TDS registration; UN bodies and embassies: UIN.",
    )
    is_sez = forms.BooleanField(required=False, label="Unit or developer in a Special Economic Zone")
    billing_email = forms.EmailField(required=False, label="Billing email")

    def save(self, *, project, actor):
        """Save through the service; its field errors land on the form. True if saved."""
        try:
            services.billing_profile_update(project=project, actor=actor, **self.cleaned_data)
        except InvalidInput as exc:
            for field, message in exc.fields.items():
                self.add_error(field if field in self.fields else None, message)
            return False
        return True

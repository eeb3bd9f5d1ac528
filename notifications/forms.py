from django import forms

from .choices import EventType


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        max_length=500, assume_scheme="https", label="URL", help_text="Receives a signed POST for each event."
    )
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Events",
        help_text="Types marked “not yet sent” have no source in this version.",
    )


class PreferencesForm(forms.Form):
    """One checkbox per event type: email on or off."""

    def __init__(self, *args, preferences, **kwargs):
        super().__init__(*args, **kwargs)
        for row in preferences:
            self.fields[row["event_type"]] = forms.BooleanField(
                required=False, initial=row["email"], label=row["label"]
            )

    def email_choices(self) -> dict[str, bool]:
        return {name: bool(value) for name, value in self.cleaned_data.items()}

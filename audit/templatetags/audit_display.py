"""An audit event's details as readable key/value text for the portal (the raw JSON stays
in the admin and the exports)."""

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_datetime

register = template.Library()

# Events whose details are ``{field: [old, new]}`` maps: a pair reads "old → new".
CHANGE_SUFFIXES = ("_changed", ".updated", "profile_updated")


def _label(key) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _text(value, *, pairs_are_changes: bool = False) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        if pairs_are_changes and len(value) == 2:
            return f"{_text(value[0])} → {_text(value[1])}"
        return ", ".join(_text(item) for item in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{_label(k)}: {_text(v, pairs_are_changes=pairs_are_changes)}" for k, v in value.items())
    if isinstance(value, str) and "T" in value and (moment := _iso_datetime(value)):
        return date_format(timezone.localtime(moment), "j M Y, H:i T")  # the page's zone, labelled
    return str(value)


def _iso_datetime(value: str):
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    return moment if moment is not None and timezone.is_aware(moment) else None


@register.filter
def audit_details(event) -> list[tuple[str, str]]:
    """``[(label, text), …]`` of ``event.details``: "Amount" "500.00", "Role" "member → admin"."""
    details = event.details if isinstance(event.details, dict) else {"details": event.details}
    changes = str(event.action).endswith(CHANGE_SUFFIXES) or "changed" in details
    rows = []
    for key, value in details.items():
        # A nested map ({"changed": {"city": [old, new], …}}) reads as rows of its own.
        items = value.items() if isinstance(value, dict) and value else [(key, value)]
        rows += [(_label(k), _text(v, pairs_are_changes=changes)) for k, v in items]
    return rows

from django import template

register = template.Library()

# Badge colour of a status value (VM status, power state, operation state, request status).
STATUS_CLASSES = {
    "active": "ok",
    "running": "ok",
    "succeeded": "ok",
    "approved": "ok",
    "building": "info busy",
    "pending": "warn",
    "paused": "warn",
    "error": "bad",
    "failed": "bad",
    "rejected": "bad",
    "missing": "bad",
}


@register.filter
def status_class(value) -> str:
    return STATUS_CLASSES.get(str(value), "")


@register.filter
def mib(value) -> str:
    """Memory for people: 1024 → "1 GiB", 512 → "512 MiB"."""
    value = int(value or 0)
    if value >= 1024 and value % 1024 == 0:
        return f"{value // 1024} GiB"
    if value >= 1024:
        return f"{value / 1024:.1f} GiB"
    return f"{value} MiB"


@register.filter
def took(started, finished) -> str:
    """How long an operation ran, to the second: "4 s", "2 min 5 s", "1 h 3 min"
    (Django's timesince rounds a four-second stop down to "0 minutes")."""
    if not started or not finished:
        return ""
    seconds = max(0, round((finished - started).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"

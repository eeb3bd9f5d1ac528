from django.db import migrations


def start_at_the_current_end(apps, schema_editor):
    """An existing installation starts relaying at the newest audit event, not the first
    (old events are history, not news)."""
    AuditEvent = apps.get_model("audit", "AuditEvent")
    RelayCursor = apps.get_model("notifications", "RelayCursor")
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    RelayCursor.objects.update_or_create(name="audit", defaults={"last_event_id": last})


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("audit", "0002_append_only_triggers"),
    ]

    operations = [migrations.RunPython(start_at_the_current_end, migrations.RunPython.noop)]

"""Users created before sign-up existed (operators, seeded demo users) get a
verified allauth EmailAddress, so mandatory verification does not lock them out."""

from django.db import migrations


def forwards(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    known = set(EmailAddress.objects.values_list("user_id", flat=True))
    EmailAddress.objects.bulk_create(
        EmailAddress(user_id=user.pk, email=user.email.lower(), verified=True, primary=True)
        for user in User.objects.exclude(pk__in=known).only("pk", "email")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_security"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]

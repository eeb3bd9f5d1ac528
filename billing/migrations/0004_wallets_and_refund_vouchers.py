"""Every project has a wallet (new ones get theirs at creation, through
accounts.hooks); refund vouchers are append-only like the other documents."""

from django.db import migrations

FUNCTION_EXISTS = "billing_reject_change"  # created by 0002


def wallets(apps, schema_editor):
    Project = apps.get_model("accounts", "Project")
    Wallet = apps.get_model("billing", "Wallet")
    have = set(Wallet.objects.values_list("project_id", flat=True))
    Wallet.objects.bulk_create(
        [Wallet(project_id=pk) for pk in Project.objects.values_list("pk", flat=True) if pk not in have]
    )


def triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE TRIGGER billing_refundvoucher_append_only BEFORE UPDATE OR DELETE ON billing_refundvoucher "
        f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION_EXISTS}()"
    )


def triggers_back(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS billing_refundvoucher_append_only ON billing_refundvoucher")


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_payments"), ("accounts", "0004_user_sessions")]

    operations = [
        migrations.RunPython(wallets, migrations.RunPython.noop),
        migrations.RunPython(triggers, triggers_back),
    ]
